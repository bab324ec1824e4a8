{
  description = "paws: protected agent workspace sandboxes (control plane, KVM node, per-VM TLS proxy)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # Runtime tools the node shells out to (VMM, network, firewall, image build).
      nodeTools = pkgs: with pkgs; [ qemu_kvm iproute2 nftables iptables e2fsprogs cpio zstd dpkg apt git curl ];
    in
    {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_24 pkgs.deno pkgs.postgresql_16 pkgs.tmux ] ++ nodeTools pkgs;
        };
      });

      packages = forAll (pkgs: rec {
        # The source runs directly on Node 24 (type stripping); the package is the tree plus its npm deps.
        paws = pkgs.buildNpmPackage {
          pname = "paws";
          version = "0.1.0";
          src = ./.;
          npmDepsHash = pkgs.lib.fakeHash; # set after the first `nix build` reports the real hash
          dontNpmBuild = true;
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

      nixosModules.default = { config, lib, pkgs, ... }:
        let
          cfg = config.services.paws;
          paws = self.packages.${pkgs.system}.paws;
        in
        {
          options.services.paws = {
            control = {
              enable = lib.mkEnableOption "the paws control plane";
              port = lib.mkOption { type = lib.types.port; default = 4000; };
              host = lib.mkOption { type = lib.types.str; default = "127.0.0.1"; };
              dataDir = lib.mkOption { type = lib.types.path; default = "/var/lib/paws"; };
              databaseUrlFile = lib.mkOption {
                type = lib.types.nullOr lib.types.path;
                default = null;
                description = "File holding DATABASE_URL; embedded PGlite when null.";
              };
            };
            node = {
              enable = lib.mkEnableOption "a paws node (runs microVMs; needs root and /dev/kvm or TCG)";
              controlUrl = lib.mkOption { type = lib.types.str; default = "ws://127.0.0.1:4000"; };
              tokenFile = lib.mkOption { type = lib.types.path; description = "File holding the node token."; };
              dataDir = lib.mkOption { type = lib.types.path; default = "/var/lib/paws-node"; };
            };
          };

          config = lib.mkMerge [
            (lib.mkIf cfg.control.enable {
              systemd.services.paws-control = {
                wantedBy = [ "multi-user.target" ];
                after = [ "network.target" ];
                environment = {
                  PAWS_HOST = cfg.control.host;
                  PAWS_PORT = toString cfg.control.port;
                  PAWS_DATA_DIR = cfg.control.dataDir;
                };
                script = lib.optionalString (cfg.control.databaseUrlFile != null)
                  "export DATABASE_URL=$(cat ${cfg.control.databaseUrlFile})\n"
                  + "exec ${paws}/bin/paws control";
                serviceConfig = { StateDirectory = "paws"; DynamicUser = true; Restart = "on-failure"; };
              };
            })
            (lib.mkIf cfg.node.enable {
              boot.kernelModules = [ "tun" "nf_tables" ];
              systemd.services.paws-node = {
                wantedBy = [ "multi-user.target" ];
                after = [ "network.target" ];
                environment = { PAWS_CONTROL_URL = cfg.node.controlUrl; PAWS_DATA_DIR = cfg.node.dataDir; };
                script = "export PAWS_NODE_TOKEN=$(cat ${cfg.node.tokenFile})\nexec ${paws}/bin/paws node";
                # The node creates TAP devices and nftables tables: it runs as root.
                serviceConfig = { StateDirectory = "paws-node"; Restart = "on-failure"; };
              };
            })
          ];
        };
    };
}
