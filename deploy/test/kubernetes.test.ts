// deno-lint-ignore-file no-explicit-any -- rendered manifests are read loosely, then schema-validated
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"

const root = join(import.meta.dirname, "..", "kubernetes")
const overlays = readdirSync(join(root, "overlays"))

/** `kubectl kustomize` (Debian's kubernetes-client on CI) renders the overlay; its objects, parsed. */
const render = (overlay: string): Array<any> => {
  const out = execFileSync("kubectl", ["kustomize", join(root, "overlays", overlay)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  })
  return parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o !== null)
}

/** The kubernetes-models class for an object's apiVersion and kind (`apps/v1` → apps/v1/Deployment). */
const modelFor = async (o: any) => {
  const module = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)
  return module[o.kind] as new (data: unknown) => { validate(): void }
}

const byKind = (objects: Array<any>, kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata?.name === name)

describe("Kubernetes manifests (deploy/kubernetes)", () => {
  it("there are overlays to check", () => assert.includeMembers(overlays, ["dev", "production"]))

  for (const overlay of overlays) {
    it(`overlay ${overlay}: renders, and every object validates against the Kubernetes schemas`, async () => {
      const objects = render(overlay)
      assert.isAtLeast(objects.length, 10)
      for (const o of objects) {
        const Model = await modelFor(o)
        assert.doesNotThrow(() => new Model(o).validate(), undefined, undefined, `${o.kind}/${o.metadata?.name}`)
        if (o.kind !== "Namespace") {
          assert.strictEqual(o.metadata.namespace, `${overlay === "dev" ? "paws-dev" : "paws"}`)
        }
      }

      const control = byKind(objects, "Deployment", "paws-control")
      const c = control.spec.template.spec.containers[0]
      assert.strictEqual(c.livenessProbe.httpGet.path, "/healthz")
      assert.strictEqual(c.readinessProbe.httpGet.path, "/readyz")
      assert.deepStrictEqual(c.envFrom, [{ secretRef: { name: "paws-secrets" } }])
      assert.strictEqual(c.securityContext.readOnlyRootFilesystem, true)
      assert.strictEqual(control.spec.replicas, overlay === "dev" ? 1 : 2)
      assert.strictEqual(
        byKind(objects, "PodDisruptionBudget", "paws-control").spec.minAvailable,
        overlay === "dev" ? 0 : 1,
      )

      // Discovery's selector matches the DaemonSet's pods, and RBAC grants exactly what it needs.
      const selector = c.env.find((e: any) => e.name === "PAWS_KUBERNETES_NODE_PODS").value
      const [key, value] = selector.split("=")
      const node = byKind(objects, "DaemonSet", "paws-node")
      assert.strictEqual(node.spec.template.metadata.labels[key], value)
      const role = byKind(objects, "Role", "paws-control-pod-reader")
      assert.deepStrictEqual(role.rules, [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }])
      assert.strictEqual(control.spec.template.spec.serviceAccountName, "paws-control")

      const n = node.spec.template.spec
      assert.strictEqual(n.containers[0].securityContext.privileged, true)
      assert.strictEqual(n.nodeSelector["paws.dev/kvm"], "true")
      assert.deepStrictEqual(n.volumes.find((v: any) => v.name === "kvm").hostPath, {
        path: "/dev/kvm",
        type: "CharDevice",
      })
      assert.strictEqual(n.automountServiceAccountToken, false)
      const token = n.containers[0].env.find((e: any) => e.name === "PAWS_NODE_TOKEN").valueFrom.secretKeyRef
      assert.deepStrictEqual(token, { name: "paws-secrets", key: "PAWS_NODES_TOKEN" })

      // Only control reaches node RPC.
      const np = byKind(objects, "NetworkPolicy", "paws-node")
      assert.strictEqual(np.spec.ingress[0].from[0].podSelector.matchLabels["app.kubernetes.io/name"], "paws-control")
    })
  }

  it("the validators do reject a broken object (so a pass above means something)", async () => {
    const objects = render("production")
    const control = structuredClone(byKind(objects, "Deployment", "paws-control"))
    control.spec.template.spec.containers[0].ports[0].containerPort = "http"
    const Model = await modelFor(control)
    assert.throws(() => new Model(control).validate(), /containerPort/)
  })

  it("production ships no Secret (it is created out of band); dev generates one with every key", () => {
    assert.isUndefined(render("production").find((o) => o.kind === "Secret"))
    const secret = byKind(render("dev"), "Secret", "paws-secrets")
    assert.hasAllKeys(secret.data, ["DATABASE_URL", "PAWS_VAULT_KEY", "PAWS_NODES_TOKEN"])
  })
})
