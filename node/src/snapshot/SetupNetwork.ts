import { caBundlePath, caEnv, caPath, shellQuote } from "../guest/GuestSetup.ts"

/**
 * Guest commands around a snapshot's setup script: before, DNS → the build's proxy and its CA in
 * the trust store (as a session's prepare does); after, that CA taken out of the bundle again and
 * its file and env removed, checked. The proxy and its CA key die with the build, so a clone
 * could not use them anyway; this also keeps clones from trusting a CA they will never meet.
 */
export const setupNetworkCommands = (o: { readonly dnsIp: string; readonly caPem: string }) => {
  const pem = `${o.caPem.trimEnd()}\n`
  // The first base64 line identifies the certificate in the bundle.
  const marker = pem.split("\n").find((l) => l !== "" && !l.startsWith("-----")) ?? pem
  const profile = "/etc/profile.d/paws-ca.sh"
  const before = [
    `date -s @${Math.floor(Date.now() / 1000)} >/dev/null`,
    `echo ${shellQuote(`nameserver ${o.dnsIp}`)} > /etc/resolv.conf`,
    `mkdir -p /usr/local/share/ca-certificates /etc/ssl/certs /etc/profile.d`,
    `printf '%s' ${shellQuote(pem)} > ${caPath}`,
    `cat ${caPath} >> ${caBundlePath}`,
    `printf '%s' ${
      shellQuote(Object.entries(caEnv).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join(""))
    } > ${profile}`,
  ].join(" && ")
  // Drops every PEM block identical to the CA's (the setup script may have appended others).
  const dropBlock = `NR == FNR { ca = ca $0 "\\n"; next }
/-----BEGIN CERTIFICATE-----/ { inb = 1; blk = "" }
inb { blk = blk $0 "\\n"; if (/-----END CERTIFICATE-----/) { inb = 0; if (blk != ca) printf "%s", blk }; next }
{ print }`
  const after = [
    `awk ${shellQuote(dropBlock)} ${caPath} ${caBundlePath} > ${caBundlePath}.paws-tmp`,
    `cat ${caBundlePath}.paws-tmp > ${caBundlePath}`,
    `rm -f ${caBundlePath}.paws-tmp ${caPath} ${profile}`,
    `! grep -qF ${shellQuote(marker)} ${caBundlePath}`,
  ].join(" && ")
  return { before, after }
}
