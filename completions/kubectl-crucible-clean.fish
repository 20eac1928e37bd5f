complete -c kubectl-crucible-clean -s n -l namespace -d 'Namespace to clean [default: crucible]' -r
complete -c kubectl-crucible-clean -s l -l selector -d 'Base label selector (kubectl syntax); every selected object must match it [default: app=evaluation]' -r
complete -c kubectl-crucible-clean -l test-id -d 'Objects labelled test-id=ID (repeatable)' -r
complete -c kubectl-crucible-clean -l eval-id -d 'Objects labelled eval-id=ID (repeatable)' -r
complete -c kubectl-crucible-clean -l run-id -d 'Objects of test run RUN: labelled crucible-clean/run=RUN, as the pytest plugin labels them (repeatable)' -r
complete -c kubectl-crucible-clean -l older-than -d 'Objects older than DUR: 90s, 30m, 2h, 7d, 1h30m' -r
complete -c kubectl-crucible-clean -l age-from -d 'What --older-than measures age from [default: created]' -r -f -a "created\t''
finished\t''"
complete -c kubectl-crucible-clean -l level -d 'Which kinds: pods, jobs, all (jobs with their pods, plus bare pods), or none (no object is selected or deleted: only the quota section is reported) [default: pods]' -r -f -a "none\t'No object is selected or deleted: only the quota section is reported'
pods\t'Pods (of finished jobs, and bare ones)'
jobs\t'Jobs, with the pods the cascade takes'
all\t'Jobs (with their pods) and bare pods'"
complete -c kubectl-crucible-clean -l strategy -d 'How to select [default: label with --test-id/--eval-id, else age]' -r -f -a "label\t'Objects labelled with the given test or evaluation ids'
age\t'Objects older than --older-than'
pressure\t'Oldest finished objects while a quota resource is at or above --threshold'
watermark\t'Oldest finished objects from --high-watermark down to --low-watermark'
hybrid\t'Label, age and watermark rules together'
fallback\t'Objects with a test-id by the run\'s ids, objects without one by --older-than'"
complete -c kubectl-crucible-clean -l policy -d 'Policy file (YAML): named rules, each a label selector with its strategy, retention and watermarks, plus retention multipliers by priority label. Flags given on the command line override the file' -r -F
complete -c kubectl-crucible-clean -l threshold -d 'Pressure: act when a quota resource that deleting can relieve is at or above this fraction of its hard limit, and delete oldest first until it is below [default: 0.8]' -r
complete -c kubectl-crucible-clean -l high-watermark -d 'Watermark: plan a cleanup when count/pods usage reaches this fraction of the budget [default: 0.8]' -r
complete -c kubectl-crucible-clean -l low-watermark -d 'Watermark: delete finished objects until projected count/pods usage is at or below this fraction [default: 0.5]' -r
complete -c kubectl-crucible-clean -l prefer -d 'Which finished objects pressure and watermark delete first (then oldest first) [default: oldest]' -r -f -a "oldest\t'Oldest first'
failed\t'Failed ones first (oldest first among them), then the rest'
succeeded\t'Succeeded ones first (oldest first among them), then the rest'"
complete -c kubectl-crucible-clean -l capacity -d 'Pod budget (count/pods hard limit) for pressure and watermark where the namespace has no ResourceQuota on count/pods' -r
complete -c kubectl-crucible-clean -l keep-last -d 'Never delete the N newest finished objects of each test run (grouped by test-id)' -r
complete -c kubectl-crucible-clean -l keep-succeeded-for -d 'Keep succeeded pods and complete jobs for DUR after they finished' -r
complete -c kubectl-crucible-clean -l keep-failed-for -d 'Keep failed pods and jobs for DUR after they failed' -r
complete -c kubectl-crucible-clean -l watch -d 'Keep cleaning until SIGTERM or SIGINT (needs --yes, or --dry-run to preview): `event` (the default) watches the objects and re-plans within a second of a change or of the moment an object becomes eligible; `poll` runs the whole cleanup again every --interval. One JSON line per reconcile that deleted or failed something with -o json' -r -f -a "event\t'Watch pods, jobs and quotas; re-plan after each change and when an object becomes eligible'
poll\t'List and clean everything again every --interval'"
complete -c kubectl-crucible-clean -l interval -d 'With --watch: how often everything is listed afresh, a safety net for a missed event [default: 1h]; with --watch=poll: the time between two cycles [default: 5m]' -r
complete -c kubectl-crucible-clean -l guard -d 'Guard test run RUN: hold a Lease for it while standard input stays open; when input ends (the parent process died), delete every object of the run (--run-id RUN, all levels, running ones too), then the Lease. A line `release` ends the guard without deleting; other input is ignored. Prints `ready` once the Lease is held' -r
complete -c kubectl-crucible-clean -l parent-pid -d 'With --guard: PID is the guard\'s parent (the test run); when it is gone, reap the run as the end of input does, even if a child of the run still holds the pipe. Refused when PID is not the parent' -r
complete -c kubectl-crucible-clean -l lease-duration -d 'How long a --guard Lease lasts without renewal (it is renewed every third of it) [default: 30s]' -r
complete -c kubectl-crucible-clean -l mark-kept-for -d 'Instead of deleting, mark the objects of --test-id, --eval-id or --run-id (every phase, pods and jobs) kept for DUR: annotation crucible-clean/keep-until=<now + DUR>, which every cleanup honours until then (the pytest plugin\'s keep-failed). 0 ends an earlier keep-until now' -r
complete -c kubectl-crucible-clean -l keep-reason -d 'With --mark-kept-for: why, as annotation crucible-clean/keep-reason (the pytest plugin: the test\'s node id)' -r
complete -c kubectl-crucible-clean -l metrics-addr -d 'Serve Prometheus metrics on http://HOST:PORT/metrics, and /healthz and /readyz, while --watch runs' -r
complete -c kubectl-crucible-clean -l dry-run -d 'Preview only: `client` (default) renders the plan, `server` sends each delete with dryRun=All' -r -f -a "client\t''
server\t''"
complete -c kubectl-crucible-clean -l max-delete -d 'Abort before the first delete if more than N objects would be deleted' -r
complete -c kubectl-crucible-clean -l save-plan -d 'Also write the plan (the JSON report of this dry run) to FILE, to apply later with --from-plan' -r -F
complete -c kubectl-crucible-clean -l from-plan -d 'Delete exactly the objects a saved plan (--save-plan, or --dry-run -o json) plans to delete, by uid, each checked again first; nothing else' -r -F
complete -c kubectl-crucible-clean -l plan-max-age -d 'Refuse a --from-plan plan older than DUR [default: 1h]' -r
complete -c kubectl-crucible-clean -l cascade -d 'Deletion propagation for jobs' -r -f -a "background\t''
foreground\t''
orphan\t''"
complete -c kubectl-crucible-clean -l grace-period -d 'Grace period passed with each delete, at least 1 [default: the server\'s]' -r
complete -c kubectl-crucible-clean -l concurrency -d 'Deletes in flight at once: auto (follows the server\'s pace, up to 256) or N (1-256)' -r
complete -c kubectl-crucible-clean -l timeout -d 'How long --wait waits [default: 5m]' -r
complete -c kubectl-crucible-clean -l archive -d 'Before deleting an object, write its manifest, its Events and (pods) its containers\' logs under DIR/<namespace>/<kind>/<name>/; an object whose archive cannot be written is kept' -r -F
complete -c kubectl-crucible-clean -l archive-only -d 'Archive only these objects (the others are deleted without an archive): `failed` pods and jobs' -r -f -a "failed\t'Failed pods and failed jobs'"
complete -c kubectl-crucible-clean -l archive-log-bytes -d 'The most log bytes archived per container, current and previous each: 1048576, 512Ki, 4Mi [default: 1Mi]' -r
complete -c kubectl-crucible-clean -s o -l output -d 'Output format' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-crucible-clean -s v -l v -d 'Log verbosity on stderr (as kubectl\'s -v)' -r
complete -c kubectl-crucible-clean -l kubeconfig -d 'Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]' -r -F
complete -c kubectl-crucible-clean -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-crucible-clean -l request-timeout -d 'Timeout of each request to the API server, as kubectl\'s: 30s, 1m, or a number of seconds; 0 = none [default: 30s]' -r
complete -c kubectl-crucible-clean -s A -l all-namespaces -d 'Every namespace except kube-system, kube-public and kube-node-lease'
complete -c kubectl-crucible-clean -l test-id-from-env -d 'Add the test id in $TEST_LABEL_ID (as the pytest plugin exports it) to --test-id; an error when it is unset or empty. The variable is never read without this flag'
complete -c kubectl-crucible-clean -l all -d 'Every finished object that matches the base selector'
complete -c kubectl-crucible-clean -l include-running -d 'Also pending/running pods and active jobs (never pods of a running job); with --from-plan, the plan\'s unfinished objects may go'
complete -c kubectl-crucible-clean -l stale-runs -d 'Delete the objects of test runs whose --guard Lease expired (the guard and its test run died), each in its Lease\'s namespace and created since the Lease, then those Leases; runs with a live Lease are never touched, and Leases a guard did not write are ignored'
complete -c kubectl-crucible-clean -l events -d 'Record a Kubernetes Event (reason CleanedUp) on each object before deleting it [default: on with --watch]'
complete -c kubectl-crucible-clean -l no-events -d 'Record no Events (the default without --watch)'
complete -c kubectl-crucible-clean -s y -l yes -d 'Do not ask for confirmation'
complete -c kubectl-crucible-clean -s i -l interactive -d 'Pick by hand: after the preview, a list of the planned deletes, all ticked, grouped by test run; the unticked ones are kept. Needs a terminal'
complete -c kubectl-crucible-clean -l wait -d 'Wait until the deleted objects are gone'
complete -c kubectl-crucible-clean -l run-hooks-in-dry-run -d 'Run the policy file\'s beforeDelete hooks in a dry run too (their verdicts show in the preview)'
complete -c kubectl-crucible-clean -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-crucible-clean -s V -l version -d 'Print version'
