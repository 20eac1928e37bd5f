
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'kubectl-crucible-clean' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'kubectl-crucible-clean'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'kubectl-crucible-clean' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Namespace to clean [default: crucible]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace to clean [default: crucible]')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Base label selector (kubectl syntax); every selected object must match it [default: app=evaluation]')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Base label selector (kubectl syntax); every selected object must match it [default: app=evaluation]')
            [CompletionResult]::new('--test-id', '--test-id', [CompletionResultType]::ParameterName, 'Objects labelled test-id=ID (repeatable)')
            [CompletionResult]::new('--eval-id', '--eval-id', [CompletionResultType]::ParameterName, 'Objects labelled eval-id=ID (repeatable)')
            [CompletionResult]::new('--run-id', '--run-id', [CompletionResultType]::ParameterName, 'Objects of test run RUN: labelled crucible-clean/run=RUN, as the pytest plugin labels them (repeatable)')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Objects older than DUR: 90s, 30m, 2h, 7d, 1h30m')
            [CompletionResult]::new('--age-from', '--age-from', [CompletionResultType]::ParameterName, 'What --older-than measures age from [default: created]')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Which kinds: pods, jobs, all (jobs with their pods, plus bare pods), or none (no object is selected or deleted: only the quota section is reported) [default: pods]')
            [CompletionResult]::new('--strategy', '--strategy', [CompletionResultType]::ParameterName, 'How to select [default: label with --test-id/--eval-id, else age]')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Policy file (YAML): named rules, each a label selector with its strategy, retention and watermarks, plus retention multipliers by priority label. Flags given on the command line override the file')
            [CompletionResult]::new('--threshold', '--threshold', [CompletionResultType]::ParameterName, 'Pressure: act when a quota resource that deleting can relieve is at or above this fraction of its hard limit, and delete oldest first until it is below [default: 0.8]')
            [CompletionResult]::new('--high-watermark', '--high-watermark', [CompletionResultType]::ParameterName, 'Watermark: plan a cleanup when count/pods usage reaches this fraction of the budget [default: 0.8]')
            [CompletionResult]::new('--low-watermark', '--low-watermark', [CompletionResultType]::ParameterName, 'Watermark: delete finished objects until projected count/pods usage is at or below this fraction [default: 0.5]')
            [CompletionResult]::new('--prefer', '--prefer', [CompletionResultType]::ParameterName, 'Which finished objects pressure and watermark delete first (then oldest first) [default: oldest]')
            [CompletionResult]::new('--capacity', '--capacity', [CompletionResultType]::ParameterName, 'Pod budget (count/pods hard limit) for pressure and watermark where the namespace has no ResourceQuota on count/pods')
            [CompletionResult]::new('--keep-last', '--keep-last', [CompletionResultType]::ParameterName, 'Never delete the N newest finished objects of each test run (grouped by test-id)')
            [CompletionResult]::new('--keep-succeeded-for', '--keep-succeeded-for', [CompletionResultType]::ParameterName, 'Keep succeeded pods and complete jobs for DUR after they finished')
            [CompletionResult]::new('--keep-failed-for', '--keep-failed-for', [CompletionResultType]::ParameterName, 'Keep failed pods and jobs for DUR after they failed')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Keep cleaning until SIGTERM or SIGINT (needs --yes, or --dry-run to preview): `event` (the default) watches the objects and re-plans within a second of a change or of the moment an object becomes eligible; `poll` runs the whole cleanup again every --interval. One JSON line per reconcile that deleted or failed something with -o json')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'With --watch: how often everything is listed afresh, a safety net for a missed event [default: 1h]; with --watch=poll: the time between two cycles [default: 5m]')
            [CompletionResult]::new('--guard', '--guard', [CompletionResultType]::ParameterName, 'Guard test run RUN: hold a Lease for it while standard input stays open; when input ends (the parent process died), delete every object of the run (--run-id RUN, all levels, running ones too), then the Lease. A line `release` ends the guard without deleting; other input is ignored. Prints `ready` once the Lease is held')
            [CompletionResult]::new('--parent-pid', '--parent-pid', [CompletionResultType]::ParameterName, 'With --guard: PID is the guard''s parent (the test run); when it is gone, reap the run as the end of input does, even if a child of the run still holds the pipe. Refused when PID is not the parent')
            [CompletionResult]::new('--lease-duration', '--lease-duration', [CompletionResultType]::ParameterName, 'How long a --guard Lease lasts without renewal (it is renewed every third of it) [default: 30s]')
            [CompletionResult]::new('--mark-kept-for', '--mark-kept-for', [CompletionResultType]::ParameterName, 'Instead of deleting, mark the objects of --test-id, --eval-id or --run-id (every phase, pods and jobs) kept for DUR: annotation crucible-clean/keep-until=<now + DUR>, which every cleanup honours until then (the pytest plugin''s keep-failed). 0 ends an earlier keep-until now')
            [CompletionResult]::new('--keep-reason', '--keep-reason', [CompletionResultType]::ParameterName, 'With --mark-kept-for: why, as annotation crucible-clean/keep-reason (the pytest plugin: the test''s node id)')
            [CompletionResult]::new('--metrics-addr', '--metrics-addr', [CompletionResultType]::ParameterName, 'Serve Prometheus metrics on http://HOST:PORT/metrics, and /healthz and /readyz, while --watch runs')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Preview only: `client` (default) renders the plan, `server` sends each delete with dryRun=All')
            [CompletionResult]::new('--max-delete', '--max-delete', [CompletionResultType]::ParameterName, 'Abort before the first delete if more than N objects would be deleted')
            [CompletionResult]::new('--save-plan', '--save-plan', [CompletionResultType]::ParameterName, 'Also write the plan (the JSON report of this dry run) to FILE, to apply later with --from-plan')
            [CompletionResult]::new('--from-plan', '--from-plan', [CompletionResultType]::ParameterName, 'Delete exactly the objects a saved plan (--save-plan, or --dry-run -o json) plans to delete, by uid, each checked again first; nothing else')
            [CompletionResult]::new('--plan-max-age', '--plan-max-age', [CompletionResultType]::ParameterName, 'Refuse a --from-plan plan older than DUR [default: 1h]')
            [CompletionResult]::new('--cascade', '--cascade', [CompletionResultType]::ParameterName, 'Deletion propagation for jobs')
            [CompletionResult]::new('--grace-period', '--grace-period', [CompletionResultType]::ParameterName, 'Grace period passed with each delete, at least 1 [default: the server''s]')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Deletes in flight at once: auto (follows the server''s pace, up to 256) or N (1-256)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits [default: 5m]')
            [CompletionResult]::new('--archive', '--archive', [CompletionResultType]::ParameterName, 'Before deleting an object, write its manifest, its Events and (pods) its containers'' logs under DIR/<namespace>/<kind>/<name>/; an object whose archive cannot be written is kept')
            [CompletionResult]::new('--archive-only', '--archive-only', [CompletionResultType]::ParameterName, 'Archive only these objects (the others are deleted without an archive): `failed` pods and jobs')
            [CompletionResult]::new('--archive-log-bytes', '--archive-log-bytes', [CompletionResultType]::ParameterName, 'The most log bytes archived per container, current and previous each: 1048576, 512Ki, 4Mi [default: 1Mi]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log verbosity on stderr (as kubectl''s -v)')
            [CompletionResult]::new('--v', '--v', [CompletionResultType]::ParameterName, 'Log verbosity on stderr (as kubectl''s -v)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The kubeconfig context to use')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Timeout of each request to the API server, as kubectl''s: 30s, 1m, or a number of seconds; 0 = none [default: 30s]')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Every namespace except kube-system, kube-public and kube-node-lease')
            [CompletionResult]::new('--all-namespaces', '--all-namespaces', [CompletionResultType]::ParameterName, 'Every namespace except kube-system, kube-public and kube-node-lease')
            [CompletionResult]::new('--test-id-from-env', '--test-id-from-env', [CompletionResultType]::ParameterName, 'Add the test id in $TEST_LABEL_ID (as the pytest plugin exports it) to --test-id; an error when it is unset or empty. The variable is never read without this flag')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every finished object that matches the base selector')
            [CompletionResult]::new('--include-running', '--include-running', [CompletionResultType]::ParameterName, 'Also pending/running pods and active jobs (never pods of a running job); with --from-plan, the plan''s unfinished objects may go')
            [CompletionResult]::new('--stale-runs', '--stale-runs', [CompletionResultType]::ParameterName, 'Delete the objects of test runs whose --guard Lease expired (the guard and its test run died), each in its Lease''s namespace and created since the Lease, then those Leases; runs with a live Lease are never touched, and Leases a guard did not write are ignored')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Record a Kubernetes Event (reason CleanedUp) on each object before deleting it [default: on with --watch]')
            [CompletionResult]::new('--no-events', '--no-events', [CompletionResultType]::ParameterName, 'Record no Events (the default without --watch)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Pick by hand: after the preview, a list of the planned deletes, all ticked, grouped by test run; the unticked ones are kept. Needs a terminal')
            [CompletionResult]::new('--interactive', '--interactive', [CompletionResultType]::ParameterName, 'Pick by hand: after the preview, a list of the planned deletes, all ticked, grouped by test run; the unticked ones are kept. Needs a terminal')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until the deleted objects are gone')
            [CompletionResult]::new('--run-hooks-in-dry-run', '--run-hooks-in-dry-run', [CompletionResultType]::ParameterName, 'Run the policy file''s beforeDelete hooks in a dry run too (their verdicts show in the preview)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
