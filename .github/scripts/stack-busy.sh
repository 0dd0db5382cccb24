#!/usr/bin/env bash
# Lists the runs of the workflows that take a stack's `deploy-<stack>` concurrency lock (deploy,
# drift, drill, rollout) that are queued, waiting for approval or running, other than this run;
# exits 1 when there is any. Why: GitHub keeps one pending job per concurrency group and cancels it
# when another one queues, so a drift, drill or rollout that queued behind a running job would
# silently cancel a deploy already pending there. Such a job runs this first and does not queue.
# Needs GH_TOKEN with actions: read, GITHUB_REPOSITORY, GITHUB_RUN_ID (all set by the runner).
set -euo pipefail
: "${GITHUB_REPOSITORY:?}" "${GITHUB_RUN_ID:?}"
busy=$(
  for status in requested queued waiting pending in_progress; do
    gh api "repos/$GITHUB_REPOSITORY/actions/runs?status=$status&per_page=100"
  done | jq -r --argjson me "$GITHUB_RUN_ID" '.workflow_runs[]
    | select(.id != $me and (.path | test("^\\.github/workflows/(deploy|drift|drill|rollout)\\.yml")))
    | "\(.name) run #\(.run_number): \(.status) (\(.html_url))"' | sort -u
)
if [ -n "$busy" ]; then
  printf '%s\n' "$busy"
  exit 1
fi
