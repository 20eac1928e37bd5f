#!/bin/sh
# A beforeDelete hook that uploads nothing: it appends one line per object to a
# file and lets the delete go on (exit 0). The file is $CRUCIBLE_HOOK_LOG, or
# crucible-clean-deletions.log in the directory the plugin runs in.
#
# The object's JSON arrives on stdin (unread here); what the line says comes
# from the CRUCIBLE_* variables the plugin sets. CRUCIBLE_ARCHIVE is set when
# the object was archived first (--archive): a real hook could upload that
# directory here.
set -eu
log=${CRUCIBLE_HOOK_LOG:-crucible-clean-deletions.log}
printf '%s %s %s/%s uid=%s phase=%s strategy=%s matched=%s rule=%s archive=%s dry-run=%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$CRUCIBLE_KIND" "$CRUCIBLE_NAMESPACE" "$CRUCIBLE_NAME" \
  "$CRUCIBLE_UID" "$CRUCIBLE_PHASE" "$CRUCIBLE_STRATEGY" "$CRUCIBLE_MATCHED_RULES" \
  "${CRUCIBLE_POLICY_RULE:-}" "${CRUCIBLE_ARCHIVE:-}" "$CRUCIBLE_DRY_RUN" >>"$log"
