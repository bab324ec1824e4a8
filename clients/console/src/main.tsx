import { render } from "preact"
import { useEffect, useRef, useState } from "preact/hooks"
import { auth, type Me, setSignedIn, whenUnauthorized } from "./api.ts"
import { onLinkClick, useRoute } from "./router.ts"
import { Approvals } from "./pages/Approvals.tsx"
import { Audit } from "./pages/Audit.tsx"
import { Charts } from "./pages/Charts.tsx"
import { DaemonPage } from "./pages/DaemonPage.tsx"
import { Daemons } from "./pages/Daemons.tsx"
import { Keys } from "./pages/Keys.tsx"
import { Login } from "./pages/Login.tsx"
import { Overview } from "./pages/Overview.tsx"
import { SessionPage } from "./pages/SessionPage.tsx"
import { Sessions } from "./pages/Sessions.tsx"
import { Snapshots } from "./pages/Snapshots.tsx"
import "./styles.css"

const sections = [
  ["/", "Overview"],
  ["/sessions", "Sessions"],
  ["/approvals", "Approvals"],
  ["/daemons", "Daemons"],
  ["/snapshots", "Snapshots"],
  ["/charts", "Charts"],
  ["/audit", "Audit"],
  ["/keys", "Keys"],
] as const

const Content = (props: { path: string }) => {
  const [, section, id] = props.path.split("/").map(decodeURIComponent)
  if (section === "sessions" && id !== undefined && id !== "") return <SessionPage id={id} />
  if (section === "daemons" && id !== undefined && id !== "") return <DaemonPage name={id} />
  switch (section) {
    case "sessions":
      return <Sessions />
    case "approvals":
      return <Approvals />
    case "daemons":
      return <Daemons />
    case "snapshots":
      return <Snapshots />
    case "charts":
      return <Charts />
    case "audit":
      return <Audit />
    case "keys":
      return <Keys />
    case "":
    case "login":
      return <Overview />
    default:
      return <p>No page at {props.path}.</p>
  }
}

const App = () => {
  const [me, setMe] = useState<Me | undefined | null>(undefined) // undefined: asking; null: signed out
  const { path } = useRoute()
  const signIn = (who: Me | null) => {
    setSignedIn(who ?? undefined)
    setMe(who)
  }
  useEffect(() => {
    whenUnauthorized(() => signIn(null))
    auth.me().then((r) => signIn(r.data ?? null), () => signIn(null))
  }, [])
  const first = useRef(true)
  useEffect(() => {
    // After an in-app navigation, move focus to the new page (as a full page load would) for keyboard and reader users.
    if (first.current) first.current = false
    else document.getElementById("main")?.focus()
  }, [path])
  if (me === undefined) return <p class="loading">Loading…</p>
  if (me === null) return <Login onSignedIn={signIn} />
  const active = (href: string) => (href === "/" ? path === "/" : path.startsWith(href))
  return (
    <div class="shell" onClick={onLinkClick}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="/">paws</a>
        <nav aria-label="Sections">
          <ul>
            {sections.map(([href, label]) => (
              <li key={href}>
                <a href={href} aria-current={active(href) ? "page" : undefined}>{label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who" title={`project ${me.project}; scopes ${me.scopes.join(", ")}`}>{me.email ?? me.actor}</span>
        <button type="button" onClick={() => auth.logout().finally(() => signIn(null))}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}>
        <Content path={path} />
      </main>
    </div>
  )
}

render(<App />, document.getElementById("app")!)
