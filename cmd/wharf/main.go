// Command wharf is the wharf file-transfer gateway: SFTP, SCP, FTP and FTPS over one session
// core with event scripts.

// Listeners are plain TCP, as OpenSSH's and vsftpd's are. Since Go 1.24 listeners on Linux
// use Multipath TCP by default, and an FTP server opens a passive listener for every
// transfer: with MPTCP that cost 5–9% more wall time and 3–11% more CPU per small file
// (docs/performance.md). GODEBUG=multipathtcp=2 at run time turns it back on.
//
//go:debug multipathtcp=0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `wharf — a multi-protocol file-transfer gateway (SFTP, SCP, FTP, FTPS)

Usage:
  wharf serve [-c FILE]              run the gateway (the embedded default config without -c)
  wharf check -c FILE                validate a config, its scripts and its folders; exit 1 listing every problem
  wharf script run FILE --event E    run an event script against a simulated session (--help for options)
  wharf script translate FILE.js     print the Lua a JavaScript script is translated to
  wharf sessions [-c FILE] [-json]   list the live sessions of a running server (admin API);
                                     in a cluster, of every live node, with a NODE column
  wharf sessions kick ID [-c FILE]   end a live session (in a cluster, on whichever node serves it)
  wharf bans [list] [-c FILE]        list the protector's bans in force
  wharf bans add ADDR --for 1h       ban an address (or an IPv6 prefix) at run time
  wharf bans remove ADDR|all         lift a ban, or every ban
  wharf reload [-c FILE]             reload the running server's config (or send it SIGHUP)
  wharf reload --cluster [-c FILE]   ask every live node of the cluster to reload its config
  wharf health [-c FILE]             exit 0 if the running server's /healthz answers (prints
                                     the degradation, e.g. an unreachable cluster store)
  wharf cluster migrate -c FILE      apply the cluster store's schema migrations
  wharf cluster status -c FILE [-json]  the cluster's nodes: version, config hash, alive,
                                     sessions, last heartbeat; exit 1 if the store cannot be read
  wharf hash-password [--bcrypt]     hash a password read from stdin or a prompt (argon2id by default)
  wharf config print-default         print the embedded default config
  wharf config print [-c FILE]       print a config as loaded (defaults applied, secrets hidden)
  wharf version                      print the version

The commands that talk to a running server (sessions, bans, reload, health) read only
metrics.address, metrics.admin_token_file and state_dir from the config, so an error
elsewhere in the file does not stop them; --admin-address and --token-file replace the file.
Flags may come before or after the arguments; every command takes -h or --help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes a subcommand and returns the exit status: 0 on success and for -h/--help, 2
// for a wrong command line, 1 (or the command's own status) on failure.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "script":
		return cmdScript(ctx, args[1:], stdout, stderr)
	case "sessions":
		err = cmdSessions(ctx, args[1:], stdout, stderr)
	case "bans":
		err = cmdBans(ctx, args[1:], stdout, stderr)
	case "reload":
		err = cmdReload(ctx, args[1:], stdout, stderr)
	case "health":
		err = cmdHealth(ctx, args[1:], stdout, stderr)
	case "hash-password":
		err = cmdHashPassword(args[1:], stdin, stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "cluster":
		err = cmdCluster(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "wharf %s (%s)\n", version, goVersion())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wharf: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "wharf %s: %v\n", args[0], err)
	}
	return exitCode(err)
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown go"
}
