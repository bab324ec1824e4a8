import * as asn1js from "asn1js"
import * as pkijs from "pkijs"

/**
 * The per-VM certificate authority: an ECDSA P-256 key generated at start as a non-extractable
 * WebCrypto key, so its private half cannot leave this process even by accident. Leaves share one
 * key pair (as mitmproxy does): issuing a name then costs one signature, about a millisecond.
 */
export interface CertificateAuthority {
  readonly certificatePem: string
  /** PKCS#8 PEM of the key shared by all leaves. */
  readonly leafKeyPem: string
  readonly issueLeaf: (dnsName: string) => Promise<string>
}

const webcrypto = globalThis.crypto
// Set when the first CA is made, not at import: importing the proxy's modules does nothing.
const useWebCrypto = () => pkijs.setEngine("paws", new pkijs.CryptoEngine({ name: "paws", crypto: webcrypto }))

const ecdsa = { name: "ECDSA", namedCurve: "P-256" } as const
const hourMs = 60 * 60 * 1000
/** Guests restored from a snapshot may run with a skewed clock: tolerate a day back, expire two days ahead. */
const validity = { backMs: 24 * hourMs, aheadMs: 48 * hourMs }

const toPem = (label: string, der: ArrayBuffer): string => {
  const b64 = Buffer.from(der).toString("base64")
  const lines = b64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

const serialNumber = (): asn1js.Integer => {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16))
  // Positive and non-zero first byte: DER INTEGERs must be minimal (a leading 0x00 before a byte
  // < 0x80 is "illegal padding", and OpenSSL then rejects about one certificate in 256).
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return new asn1js.Integer({ valueHex: bytes.buffer })
}

const commonName = (value: string): pkijs.RelativeDistinguishedNames =>
  new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({ type: "2.5.4.3", value: new asn1js.Utf8String({ value }) }),
    ],
  })

const extension = (extnID: string, critical: boolean, value: { toSchema(): asn1js.BaseBlock }) =>
  new pkijs.Extension({ extnID, critical, extnValue: value.toSchema().toBER(false) })

const keyUsage = (bits: number) => {
  const ber = new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer }).toBER(false)
  return new pkijs.Extension({ extnID: "2.5.29.15", critical: true, extnValue: ber })
}

const keyIdentifier = async (publicKey: CryptoKey): Promise<ArrayBuffer> => {
  const raw = await webcrypto.subtle.exportKey("raw", publicKey)
  return (await webcrypto.subtle.digest("SHA-1", raw)).slice(0, 20)
}

const signed = async (
  cert: pkijs.Certificate,
  subjectKey: CryptoKey,
  issuerKey: CryptoKey,
): Promise<string> => {
  await cert.subjectPublicKeyInfo.importKey(subjectKey)
  await cert.sign(issuerKey, "SHA-256")
  return toPem("CERTIFICATE", cert.toSchema(true).toBER(false))
}

const baseCertificate = (issuer: string, subject: string): pkijs.Certificate => {
  const now = Date.now()
  const cert = new pkijs.Certificate()
  cert.version = 2
  cert.serialNumber = serialNumber()
  cert.issuer = commonName(issuer)
  cert.subject = commonName(subject)
  cert.notBefore.value = new Date(now - validity.backMs)
  cert.notAfter.value = new Date(now + validity.aheadMs)
  return cert
}

export const makeCertificateAuthority = async (): Promise<CertificateAuthority> => {
  useWebCrypto()
  const [caKeys, leafKeys] = await Promise.all([
    webcrypto.subtle.generateKey(ecdsa, false, ["sign", "verify"]),
    webcrypto.subtle.generateKey(ecdsa, true, ["sign", "verify"]),
  ])
  const caName = `paws per-VM CA ${Buffer.from(webcrypto.getRandomValues(new Uint8Array(6))).toString("hex")}`
  const caKeyId = await keyIdentifier(caKeys.publicKey)

  const ca = baseCertificate(caName, caName)
  ca.extensions = [
    extension("2.5.29.19", true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
    keyUsage(0x06), // keyCertSign | cRLSign
    new pkijs.Extension({
      extnID: "2.5.29.14",
      critical: false,
      extnValue: new asn1js.OctetString({ valueHex: caKeyId }).toBER(false),
    }),
  ]
  const certificatePem = await signed(ca, caKeys.publicKey, caKeys.privateKey)
  const leafKeyPem = toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey))
  const authorityKeyId = new pkijs.AuthorityKeyIdentifier({
    keyIdentifier: new asn1js.OctetString({ valueHex: caKeyId }),
  })

  const issueLeaf = (dnsName: string): Promise<string> => {
    const leaf = baseCertificate(caName, dnsName)
    leaf.extensions = [
      extension("2.5.29.19", true, new pkijs.BasicConstraints({ cA: false })),
      keyUsage(0x80), // digitalSignature
      extension("2.5.29.37", false, new pkijs.ExtKeyUsage({ keyPurposes: ["1.3.6.1.5.5.7.3.1"] })),
      extension(
        "2.5.29.17",
        false,
        new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 2, value: dnsName })] }),
      ),
      extension("2.5.29.35", false, authorityKeyId),
    ]
    return signed(leaf, leafKeys.publicKey, caKeys.privateKey)
  }

  return { certificatePem, leafKeyPem, issueLeaf }
}
