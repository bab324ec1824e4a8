# package-lock.json with a `resolved` URL for every registry package, for nixpkgs' importNpmLock.
#
# Why: this project's lock is written with npm's omit-lockfile-registry-resolved=true, so its registry
# entries carry `version` and `integrity` but no `resolved`. nixpkgs' fetchNpmDeps (and so any
# `npmDepsHash`) only fetches entries that have a resolved URL: it would fetch nothing and `npm ci`
# would fail offline. importNpmLock fetches each tarball as its own fixed-output derivation, checked
# against the lock's own `integrity`, so the lock stays the single source of truth and there is no
# separate hash to go stale. The URL is the registry's tarball path: <name>/-/<basename>-<version>.tgz.
#
# Pure Nix (builtins only), so the tests evaluate it with a bare `nix-instantiate`.
lockFile:
let
  lock = builtins.fromJSON (builtins.readFile lockFile);
  registry = "https://registry.npmjs.org";
  # "node_modules/a/node_modules/@s/b" -> "@s/b": the last install location names the package.
  installedName = path:
    let parts = builtins.split "node_modules/" path;
    in builtins.elemAt parts (builtins.length parts - 1);
  basename = name:
    let m = builtins.match "@[^/]+/(.+)" name;
    in if m == null then name else builtins.head m;
  withResolved = path: module:
    if module ? resolved || module.link or false || !(module ? integrity) || !(module ? version)
    then module
    else
      let name = module.name or (installedName path);
      in module // { resolved = "${registry}/${name}/-/${basename name}-${module.version}.tgz"; };
in
lock // { packages = builtins.mapAttrs withResolved lock.packages; }
