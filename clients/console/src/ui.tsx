import type { ComponentChildren } from "preact"

export const Page = (props: { title: string; actions?: ComponentChildren; children: ComponentChildren }) => (
  <section aria-labelledby="page-title">
    <header class="page-head">
      <h1 id="page-title">{props.title}</h1>
      {props.actions}
    </header>
    {props.children}
  </section>
)

export const ErrorNote = (props: { error: string | undefined }) =>
  props.error === undefined ? null : <p role="alert" class="error">{props.error}</p>

export const Status = (props: { status: string }) => <span class={`status status-${props.status}`}>{props.status}</span>

/** A timestamp in the reader's locale, with the exact ISO time on hover. */
export const When = (props: { at: string | null | undefined }) =>
  props.at === null || props.at === undefined
    ? <span class="muted">—</span>
    : <time dateTime={props.at} title={props.at}>{new Date(props.at).toLocaleString()}</time>

export const ms = (n: number | null | undefined) =>
  n === null || n === undefined
    ? "—"
    : n < 1000
    ? `${n} ms`
    : n < 120_000
    ? `${(n / 1000).toFixed(1)} s`
    : `${(n / 60_000).toFixed(1)} min`

export const shortId = (id: string) => id.slice(0, 8)

/** A table that scrolls sideways on a phone instead of overflowing the page. */
export const Table = (props: { label: string; head: ReadonlyArray<string>; children: ComponentChildren }) => (
  <div class="table-wrap" role="region" aria-label={props.label} tabIndex={0}>
    <table>
      <thead>
        <tr>{props.head.map((h) => <th scope="col" key={h}>{h}</th>)}</tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  </div>
)

export const Empty = (props: { columns: number; text: string }) => (
  <tr>
    <td colSpan={props.columns} class="muted">{props.text}</td>
  </tr>
)
