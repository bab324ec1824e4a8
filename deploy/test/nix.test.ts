// deno-lint-ignore-file no-explicit-any -- evaluated Nix values are read loosely
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"

const repo = join(import.meta.dirname, "..", "..")
const fixtures = join(import.meta.dirname, "fixtures")

/** Debian's nix-bin, evaluating purely (no store writes, no downloads). */
const nix = (args: Array<string>, cwd = repo): string =>
  execFileSync("nix-instantiate", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
const evalJson = (expr: string, cwd = repo): any =>
  JSON.parse(nix(["--eval", "--strict", "--json", "--readonly-mode", "-E", expr], cwd))

const nixFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.name === "node_modules" || e.name === ".git"
      ? []
      : e.isDirectory()
      ? nixFiles(join(dir, e.name))
      : e.name.endsWith(".nix")
      ? [join(dir, e.name)]
      : []
  )

/** The NixOS module evaluated by nixpkgs' lib.evalModules with `config` (a Nix attrset expression). */
const evalModule = (config: string) => evalJson(`import ./nixos-module-eval.nix { config = ${config}; }`, fixtures)

describe("Nix (flake, NixOS module)", () => {
  it("every .nix file parses (nix-instantiate --parse)", () => {
    const files = nixFiles(repo)
    assert.includeMembers(files.map((f) => relative(repo, f)), ["flake.nix", "nix/module.nix"])
    for (const f of files) nix(["--parse", f])
  })

  it("services.paws.control: a hardened DynamicUser unit running `paws control` with its secrets file", () => {
    const { services, failedAssertions } = evalModule(`{
      services.paws.control = {
        enable = true; host = "0.0.0.0"; port = 4100; secretsFile = "/run/secrets/paws-control";
        settings.PAWS_LOG_LEVEL = "Debug";
      };
    }`)
    assert.deepStrictEqual(failedAssertions, [])
    assert.notProperty(services, "paws-node")
    const unit = services["paws-control"]
    const s = unit.serviceConfig
    assert.strictEqual(s.ExecStart, "/nix/store/00000000000000000000000000000000-paws-0.1.0/bin/paws control")
    assert.deepStrictEqual(unit.environment, {
      PAWS_HOST: "0.0.0.0",
      PAWS_PORT: "4100",
      PAWS_DATA_DIR: "/var/lib/paws",
      PAWS_LOG_LEVEL: "Debug",
    })
    assert.deepStrictEqual(s.EnvironmentFile, ["/run/secrets/paws-control"])
    assert.include(s, {
      DynamicUser: true,
      StateDirectory: "paws",
      StateDirectoryMode: "0700",
      NoNewPrivileges: true,
      ProtectSystem: "strict",
      ProtectHome: true,
      PrivateDevices: true,
      PrivateTmp: true,
      RestrictNamespaces: true,
      UMask: "0077",
    })
    assert.deepStrictEqual(s.CapabilityBoundingSet, [""])
    assert.deepStrictEqual(s.SystemCallFilter, ["@system-service"])
    // Secrets never become unit environment (which lands in the world-readable store).
    assert.notProperty(unit.environment, "PAWS_VAULT_KEY")
    assert.notProperty(unit.environment, "DATABASE_URL")
  })

  it("services.paws.node: root with only the capabilities and devices VMs need, calling home when told", () => {
    const { services, failedAssertions, kernelModules } = evalModule(`{
      services.paws.node = { enable = true; controlUrl = "https://paws.example"; secretsFile = "/run/secrets/node"; };
    }`)
    assert.deepStrictEqual(failedAssertions, [])
    const unit = services["paws-node"]
    const s = unit.serviceConfig
    assert.strictEqual(s.ExecStart, "/nix/store/00000000000000000000000000000000-paws-0.1.0/bin/paws node")
    assert.deepStrictEqual(unit.environment, {
      PAWS_DATA_DIR: "/var/lib/paws-node",
      PAWS_CONTROL_URL: "https://paws.example",
    })
    assert.deepStrictEqual(s.EnvironmentFile, ["/run/secrets/node"])
    assert.strictEqual(s.StateDirectory, "paws-node")
    assert.notProperty(s, "DynamicUser")
    assert.includeMembers(s.CapabilityBoundingSet, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"])
    assert.notInclude(s.CapabilityBoundingSet, "CAP_SYS_MODULE")
    assert.notInclude(s.CapabilityBoundingSet, "CAP_SYS_PTRACE")
    assert.deepStrictEqual(s.DeviceAllow, ["/dev/kvm rw", "/dev/net/tun rw"])
    assert.include(s, { NoNewPrivileges: true, ProtectHome: true, ProtectKernelModules: true, KillMode: "mixed" })
    assert.includeMembers(kernelModules, ["tun", "nf_tables"])
    // Without controlUrl the node waits to be dialled: no PAWS_CONTROL_URL at all.
    const dialled = evalModule(`{ services.paws.node = { enable = true; secretsFile = "/run/secrets/node"; }; }`)
    assert.notProperty(dialled.services["paws-node"].environment, "PAWS_CONTROL_URL")
  })

  it("a node without a secrets file (no token) is refused at evaluation, with the fix named", () => {
    const { failedAssertions } = evalModule(`{ services.paws.node.enable = true; }`)
    assert.strictEqual(failedAssertions.length, 1)
    assert.match(failedAssertions[0], /services\.paws\.node\.secretsFile.*PAWS_NODE_TOKEN/)
  })

  it("the flake's npm deps: every registry package of package-lock.json gets a tarball URL and its integrity", () => {
    const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8"))
    const resolved = evalJson(`import ./nix/lock-with-resolved.nix ./package-lock.json`)
    const registryEntries = Object.entries<any>(lock.packages).filter(([path, m]) =>
      path.includes("node_modules/") && m.link !== true
    )
    assert.isAbove(registryEntries.length, 100)
    for (const [path, m] of registryEntries) {
      const r = resolved.packages[path]
      assert.match(r.resolved, /^https:\/\/registry\.npmjs\.org\/(@[^/]+\/)?[^/]+\/-\/[^/]+\.tgz$/, path)
      assert.strictEqual(r.integrity, m.integrity, path)
      assert.isTrue(r.resolved.endsWith(`-${m.version}.tgz`), path)
    }
    // Scoped and nested installs name the right package; workspace links are left alone.
    assert.strictEqual(
      resolved.packages["node_modules/@babel/code-frame"].resolved,
      `https://registry.npmjs.org/@babel/code-frame/-/code-frame-${
        lock.packages["node_modules/@babel/code-frame"].version
      }.tgz`,
    )
    const nested = registryEntries.filter(([path]) => path.lastIndexOf("node_modules/") > 0)
    assert.isNotEmpty(nested)
    for (const [path] of nested) {
      const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)
      assert.include(resolved.packages[path].resolved, `/${name}/-/`)
    }
    assert.deepStrictEqual(resolved.packages["node_modules/@paws/core"], { resolved: "core", link: true })
  })
})
