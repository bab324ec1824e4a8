import type { EmitterWebhookEventName } from "@octokit/webhooks"
import type { GithubFilter } from "@paws/core"
import { compile } from "./DaemonRules.ts"

/** The fields of a delivery that filters look at (the payload is GitHub's, typed loosely here). */
interface DeliveryFields {
  readonly action?: unknown
  readonly ref?: unknown
  readonly comment?: { readonly body?: unknown }
  readonly issue?: { readonly body?: unknown }
  readonly pull_request?: { readonly body?: unknown }
}

/** The text a body pattern is matched against: the comment's, else the issue's or pull request's. */
const bodyOf = (p: DeliveryFields): string => {
  const body = p.comment?.body ?? p.issue?.body ?? p.pull_request?.body
  return typeof body === "string" ? body : ""
}

/** `pull_request.opened`-style name of a delivery, as @octokit/webhooks names its events. */
export const eventName = (event: string, payload: DeliveryFields): EmitterWebhookEventName | string =>
  typeof payload.action === "string" ? `${event}.${payload.action}` : event

/** Whether one of the trigger's filters accepts this delivery. */
export const githubMatches = (
  filters: ReadonlyArray<GithubFilter>,
  event: string,
  payload: DeliveryFields,
): boolean =>
  filters.some((f) => {
    if (f.event !== event) return false
    if (f.action !== undefined && payload.action !== f.action) return false
    if (f.branch !== undefined && payload.ref !== `refs/heads/${f.branch}`) return false
    if (f.bodyPattern !== undefined && compile(f.bodyPattern)?.test(bodyOf(payload)) !== true) return false
    return true
  })
