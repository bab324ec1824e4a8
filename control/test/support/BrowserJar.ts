/**
 * Just enough of a browser for a sign-in: a cookie jar per host name (like a browser's, whatever the port; no paths, no expiry but
 * `Max-Age=0`/empty values), redirects and `<meta http-equiv="refresh">` followed, and HTML forms
 * posted as `application/x-www-form-urlencoded` with their hidden inputs.
 */
export class BrowserJar {
  readonly cookies = new Map<string, Map<string, string>>()

  cookie(host: string, name: string): string | undefined {
    return this.cookies.get(new URL(`http://${host}`).hostname)?.get(name)
  }

  /** One request, no redirects followed; the jar takes the response's cookies. */
  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}) {
    const target = new URL(url)
    const jar = this.cookies.get(target.hostname) ?? new Map<string, string>()
    this.cookies.set(target.hostname, jar)
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers["cookie"] = [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
    if (init.form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded"
    const res = await fetch(target, {
      method: init.method ?? "GET",
      headers,
      redirect: "manual",
      ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() }),
    })
    for (const set of res.headers.getSetCookie()) {
      const [pair, ...attributes] = set.split(";")
      const name = pair!.slice(0, pair!.indexOf("="))
      const value = pair!.slice(pair!.indexOf("=") + 1)
      const expired = value === "" || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attributes.some((a) => /^\s*expires=.*1970/i.test(a))
      if (expired) jar.delete(name)
      else jar.set(name, value)
    }
    return { url: target.href, status: res.status, headers: res.headers, text: await res.text() }
  }

  /** Follows redirects and meta refreshes from `url` until a page that is neither; returns it. */
  async navigate(url: string, init: { method?: string; form?: Record<string, string> } = {}) {
    let reply = await this.request(url, init)
    for (let hops = 0; hops < 20; hops++) {
      const location = reply.headers.get("location")
      const refresh = /<meta http-equiv="refresh" content="0;url=([^"]+)">/.exec(reply.text)?.[1]
      const next = location ?? (refresh === undefined ? undefined : refresh.replaceAll("&amp;", "&"))
      if (next === undefined || reply.status >= 400) return reply
      reply = await this.request(new URL(next, reply.url).href)
    }
    throw new Error(`too many redirects from ${url}`)
  }

  /** Fills the page's first form (its inputs, then `values`) and submits it like a browser, following on. */
  submitForm(page: { url: string; text: string }, values: Record<string, string> = {}) {
    const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(page.text)
    if (form === null) throw new Error(`no form on ${page.url}: ${page.text.slice(0, 500)}`)
    const fields: Record<string, string> = {}
    for (const input of form[2]!.matchAll(/<input([^>]*)>/g)) {
      const name = /name="([^"]+)"/.exec(input[1]!)?.[1]
      if (name !== undefined) fields[name] = /value="([^"]*)"/.exec(input[1]!)?.[1] ?? ""
    }
    return this.navigate(new URL(form[1]!, page.url).href, { method: "POST", form: { ...fields, ...values } })
  }
}
