/** Shell text the node sends into a guest. Everything is quoted; nothing here is secret. */

export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

export const caPath = "/usr/local/share/ca-certificates/paws-proxy-ca.crt"
export const caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
export const envPath = "/etc/paws/env.sh"
export const scriptPath = "/workload/script.sh"
export const resultPath = "/output/result.json"

/** Common clients' trust-store variables, all pointing at the bundle that includes the proxy CA. */
export const caEnv: Record<string, string> = {
  SSL_CERT_FILE: caBundlePath,
  NODE_EXTRA_CA_CERTS: caPath,
  REQUESTS_CA_BUNDLE: caBundlePath,
  GIT_SSL_CAINFO: caBundlePath,
  CURL_CA_BUNDLE: caBundlePath,
}

const exports = (env: Record<string, string>): string =>
  Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join("\n") + "\n"

/**
 * One exec that prepares the guest: clock (a restored guest's clock is behind; TLS needs it),
 * DNS → the proxy (host-side IP), the per-VM CA into the trust store, the env file when it is
 * small enough to travel in the command (`envInline`), and the workload script from stdin.
 */
export const prepareGuestCommand = (o: {
  /** Undefined when the clock is already exact (a restored guest's agent set it to the nanosecond). */
  readonly epochSeconds: number | undefined
  readonly dnsIp: string
  readonly caPem: string
  readonly envInline: string | undefined
}): string =>
  [
    ...(o.epochSeconds === undefined ? [] : [`date -s @${o.epochSeconds} >/dev/null`]),
    `echo ${shellQuote(`nameserver ${o.dnsIp}`)} > /etc/resolv.conf`,
    `mkdir -p /usr/local/share/ca-certificates /etc/ssl/certs /etc/paws /workload /output /etc/profile.d`,
    `printf '%s' ${shellQuote(o.caPem)} > ${caPath}`,
    `cat ${caPath} >> ${caBundlePath}`,
    `printf '%s' ${shellQuote(exports(caEnv))} > /etc/profile.d/paws-ca.sh`,
    ...(o.envInline === undefined
      ? []
      : [`printf '%s' ${shellQuote(o.envInline)} > ${envPath}`, `chmod 600 ${envPath}`]),
    `cat > ${scriptPath}`,
    `chmod 755 ${scriptPath}`,
  ].join(" && ")

/** dropbear refuses exec commands past ~9000 bytes; larger env files go in their own write. */
export const maxInlineCommandBytes = 8000

/** The env file: trust-store variables, then the workload's own env (it may override them). */
export const envFile = (workloadEnv: Record<string, string> | undefined): string =>
  exports(caEnv) + exports(workloadEnv ?? {})

export const runWorkloadCommand = `. ${envPath} && cd /root 2>/dev/null; exec sh ${scriptPath}`
