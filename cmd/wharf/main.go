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
  wharf serve [-c FILE]            run the gateway (the embedded default config without -c)
  wharf check -c FILE              validate a config and its scripts; exit 1 listing every problem
  wharf script run FILE --event E  run an event script against a simulated session (--help for options)
  wharf script translate FILE.js   print the Lua a JavaScript script is translated to
  wharf sessions [-c FILE] [-json] list the live sessions of a running server (admin API)
  wharf sessions kick [-c FILE] ID end a live session
  wharf reload [-c FILE]           reload the running server's config (or send it SIGHUP)
  wharf health [-c FILE]           exit 0 if the running server's /healthz answers ok
  wharf hash-password [--bcrypt]   hash a password for the config (argon2id by default)
  wharf config print-default       print the embedded default config
  wharf version                    print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes a subcommand and returns the exit status.
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
	case "reload":
		err = cmdReload(ctx, args[1:], stdout, stderr)
	case "health":
		err = cmdHealth(ctx, args[1:], stdout, stderr)
	case "hash-password":
		err = cmdHashPassword(args[1:], stdin, stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "wharf %s (%s)\n", version, goVersion())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wharf: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "wharf %s: %v\n", args[0], err)
		}
		return 1
	}
	return 0
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown go"
}

func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "print-default" {
		return errors.New("usage: wharf config print-default")
	}
	_, err := stdout.Write(defaultConfig())
	return err
}
