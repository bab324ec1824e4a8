# NixOS module: services.paws.control and services.paws.node as hardened systemd units.
# The flake imports it as nixosModules.default and sets services.paws.package to its own build.
{ config, lib, ... }:
let
  inherit (lib) mkEnableOption mkIf mkMerge mkOption optional types;
  cfg = config.services.paws;

  # Environment lines (KEY=value) that must not reach the Nix store: systemd reads them at start.
  secretsFileOption = keys: mkOption {
    type = types.nullOr types.path;
    default = null;
    example = "/run/secrets/paws";
    description = "EnvironmentFile with ${keys} (never put these in `settings`: those land in the Nix store).";
  };
  settingsOption = mkOption {
    type = types.attrsOf types.str;
    default = { };
    example = { PAWS_LOG_LEVEL = "Debug"; };
    description = "Further PAWS_* settings (see `paws --help`), as environment variables.";
  };

  # Shared by both units: nothing here is needed by either.
  commonHardening = {
    NoNewPrivileges = true;
    ProtectHome = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectClock = true;
    ProtectHostname = true;
    LockPersonality = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    # Node's JIT writes then executes code: MemoryDenyWriteExecute would kill it.
    MemoryDenyWriteExecute = false;
    UMask = "0077";
  };
in
{
  options.services.paws = {
    package = mkOption {
      type = types.package;
      description = "The paws package (the flake sets its own).";
    };
    control = {
      enable = mkEnableOption "the paws control plane";
      host = mkOption { type = types.str; default = "127.0.0.1"; description = "Address the HTTP API listens on."; };
      port = mkOption { type = types.port; default = 4000; description = "Port the HTTP API listens on."; };
      secretsFile = secretsFileOption "PAWS_VAULT_KEY=… and DATABASE_URL=… (without DATABASE_URL: embedded PGlite in the state directory; without PAWS_VAULT_KEY: a key file made there)";
      settings = settingsOption;
    };
    node = {
      enable = mkEnableOption "a paws node (runs microVMs: needs root, /dev/kvm or TCG, /dev/net/tun)";
      controlUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://paws.example.com";
        description = "Call home to this control plane; null = serve RPC on PAWS_NODE_PORT and wait to be dialled.";
      };
      secretsFile = secretsFileOption "PAWS_NODE_TOKEN=…";
      settings = settingsOption;
    };
  };

  config = mkMerge [
    (mkIf cfg.control.enable {
      systemd.services.paws-control = {
        description = "paws control plane";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" "postgresql.service" ];
        environment = {
          PAWS_HOST = cfg.control.host;
          PAWS_PORT = toString cfg.control.port;
          PAWS_DATA_DIR = "/var/lib/paws";
        } // cfg.control.settings;
        serviceConfig = commonHardening // {
          ExecStart = "${cfg.package}/bin/paws control";
          EnvironmentFile = optional (cfg.control.secretsFile != null) cfg.control.secretsFile;
          DynamicUser = true;
          StateDirectory = "paws";
          StateDirectoryMode = "0700";
          Restart = "on-failure";
          # Control needs no privilege at all: no capabilities, no devices, read-only system.
          CapabilityBoundingSet = [ "" ];
          AmbientCapabilities = [ "" ];
          ProtectSystem = "strict";
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          ProtectProc = "invisible";
          RestrictNamespaces = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
          SystemCallFilter = [ "@system-service" ];
        };
      };
    })
    (mkIf cfg.node.enable {
      assertions = [{
        assertion = cfg.node.secretsFile != null;
        message = "services.paws.node.secretsFile must name a file with PAWS_NODE_TOKEN=… (a node refuses to start without a token).";
      }];
      boot.kernelModules = [ "tun" "nf_tables" ];
      systemd.services.paws-node = {
        description = "paws node (microVMs)";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        environment = {
          PAWS_DATA_DIR = "/var/lib/paws-node";
        } // lib.optionalAttrs (cfg.node.controlUrl != null) { PAWS_CONTROL_URL = cfg.node.controlUrl; }
          // cfg.node.settings;
        serviceConfig = commonHardening // {
          ExecStart = "${cfg.package}/bin/paws node";
          EnvironmentFile = optional (cfg.node.secretsFile != null) cfg.node.secretsFile;
          StateDirectory = "paws-node";
          StateDirectoryMode = "0700";
          Restart = "on-failure";
          # Running sessions get time to end; the VMs and proxies are its children (mixed: they get SIGTERM too).
          KillMode = "mixed";
          TimeoutStopSec = "15min";
          # Root, but only what running VMs takes: TAPs and nftables (NET_ADMIN), KVM and tun devices,
          # the proxy sandbox (namespaces, mounts, dropping to an unprivileged uid), image builds (chroot, mknod).
          CapabilityBoundingSet = [
            "CAP_NET_ADMIN"
            "CAP_NET_RAW"
            "CAP_SYS_ADMIN"
            "CAP_SYS_CHROOT"
            "CAP_SYS_RESOURCE"
            "CAP_SETUID"
            "CAP_SETGID"
            "CAP_SETPCAP"
            "CAP_CHOWN"
            "CAP_FOWNER"
            "CAP_DAC_OVERRIDE"
            "CAP_KILL"
            "CAP_MKNOD"
          ];
          DeviceAllow = [ "/dev/kvm rw" "/dev/net/tun rw" ];
          ProtectSystem = "full";
          PrivateTmp = true;
        };
      };
    })
  ];
}
