{
  description = "paws: protected agent workspace sandboxes (control plane, KVM node, per-VM TLS proxy)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # Runtime tools the node shells out to (VMM, network, firewall, proxy sandbox, image build;
      # gcc builds the guest agent and paws-nothp, which QEMU starts through).
      nodeTools = pkgs: with pkgs; [
        qemu_kvm iproute2 nftables iptables util-linux python3 gcc e2fsprogs cpio zstd dpkg apt mmdebstrap git curl
      ];
    in
    {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_24 pkgs.deno pkgs.postgresql_16 pkgs.tmux pkgs.kubectl pkgs.nix ] ++ nodeTools pkgs;
        };
      });

      packages = forAll (pkgs: rec {
        # The source runs directly on Node 24 (type stripping); the package is the tree plus its npm deps.
        # No npmDepsHash: see nix/lock-with-resolved.nix for why the lock's own integrity hashes are used.
        paws = pkgs.buildNpmPackage {
          pname = "paws";
          version = "0.1.0";
          src = ./.;
          nodejs = pkgs.nodejs_24;
          npmDeps = pkgs.importNpmLock {
            npmRoot = ./.;
            packageLock = import ./nix/lock-with-resolved.nix ./package-lock.json;
          };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          # Runtime dependencies only; dev tools (the `node`/`deno` npm binaries) would download at install.
          npmInstallFlags = [ "--omit=dev" ];
          # The web console (clients/console/dist) is built here; Vite is a runtime dependency of its package.
          npmBuildScript = "console:build";
          nativeBuildInputs = [ pkgs.makeWrapper ];
          installPhase = ''
            mkdir -p $out/lib/paws $out/bin
            cp -r . $out/lib/paws
            makeWrapper ${pkgs.nodejs_24}/bin/node $out/bin/paws \
              --add-flags $out/lib/paws/clients/src/bin.ts \
              --prefix PATH : ${pkgs.lib.makeBinPath (nodeTools pkgs)}
          '';
        };
        default = paws;
      });

      # services.paws.{control,node}: see nix/module.nix.
      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./nix/module.nix ];
        services.paws.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.paws;
      };
    };
}
