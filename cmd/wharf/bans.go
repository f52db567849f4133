package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/wharf-project/wharf/ops/admin"
)

const bansUsage = `wharf bans [list] ` + adminFlagsUsage + ` [-json]
       wharf bans add ADDR --for DURATION [--reason TEXT] [--site NAME]
       wharf bans remove ADDR|all [--reason TEXT] [--site NAME]

ADDR is an IPv4 address, an IPv6 address (banned by its protector.ipv6_prefix, /64 by
default) or such an IPv6 prefix. Every site's protector is changed unless --site names one.
Each ban and lifted ban is journaled in state_dir (it survives restarts) and is a line of the
audit log with who (admin@<address>), why (--reason) and until when.`

// cmdBans lists, adds and lifts the protector's bans of a running server.
func cmdBans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	var d time.Duration
	var reason, site string
	fs := newFlagSet("bans", bansUsage, stderr)
	f.register(fs, true)
	fs.DurationVar(&d, "for", 0, "add: how long the ban lasts, e.g. 30m, 24h")
	fs.StringVar(&reason, "reason", "", "add, remove: why, for the log and the audit log")
	fs.StringVar(&site, "site", "", "add, remove: only this site (default: every site)")
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	verb := "list"
	if len(rest) > 0 {
		verb, rest = rest[0], rest[1:]
	}
	switch {
	case verb == "list" && len(rest) == 0:
	case (verb == "add" || verb == "remove") && len(rest) == 1:
	default:
		return usageError("usage: %s", bansUsage)
	}
	if verb == "add" && d <= 0 {
		return usageError("wharf bans add needs --for DURATION, e.g. --for 1h")
	}
	c, err := adminClient(f, true)
	if err != nil {
		return err
	}
	var list []admin.BanInfo
	switch verb {
	case "list":
		list, err = c.Bans(ctx)
	case "add":
		list, err = c.Ban(ctx, admin.BanRequest{Addr: rest[0], For: d.String(), Reason: reason, Site: site})
	case "remove":
		list, err = c.Unban(ctx, rest[0], site, reason)
	}
	if err != nil {
		return err
	}
	if f.jsonOut {
		return printJSON(stdout, list)
	}
	switch {
	case verb == "remove" && len(list) == 0:
		fmt.Fprintf(stdout, "%s was not banned\n", rest[0])
		return nil
	case verb == "remove":
		fmt.Fprintf(stdout, "lifted %d ban(s):\n", len(list))
	case verb == "add":
		fmt.Fprintln(stdout, "banned:")
	}
	printBans(stdout, list, time.Now())
	return nil
}

// printBans prints one line per ban.
func printBans(w io.Writer, list []admin.BanInfo, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no bans in force")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tADDRESS\tUNTIL\tLEFT\tOFFENCES")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", b.Site, b.Addr, b.Until.UTC().Format(time.RFC3339),
			age(b.Until.Sub(now)), b.Offences)
	}
	_ = tw.Flush()
}
