package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/cluster"
	"github.com/wharf-project/wharf/core/config"
)

// clusterTimeout bounds what `wharf cluster` waits for the store: a black-holed database
// must give an answer, not a hung command.
const clusterTimeout = 30 * time.Second

// cmdCluster runs `wharf cluster migrate|status`.
func cmdCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "wharf cluster migrate [-c FILE]\n       wharf cluster status [-c FILE] [-json]"
	fs := newFlagSet("cluster", synopsis, stderr)
	var file string
	fs.StringVar(&file, "c", "", "config file with the cluster: section")
	fs.StringVar(&file, "config", "", "the same as -c")
	jsonOut := fs.Bool("json", false, "print JSON (status)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "migrate" && pos[0] != "status") {
		return usageError("usage: %s", synopsis)
	}
	if file == "" {
		return usageError("the config file is required: wharf cluster %s -c FILE", pos[0])
	}
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	if cfg.Cluster == nil {
		return fmt.Errorf("%s has no cluster: section", file)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	if pos[0] == "migrate" {
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		applied, v, err := cluster.Migrate(ctx, cfg.Cluster.DSN.Value(), log)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if len(applied) == 0 {
			fmt.Fprintf(stdout, "schema up to date (version %d)\n", v)
			return nil
		}
		for _, a := range applied {
			fmt.Fprintf(stdout, "applied migration %d\n", a)
		}
		fmt.Fprintf(stdout, "schema version %d\n", v)
		return nil
	}
	st, err := cluster.Inspect(ctx, cfg.Cluster.DSN.Value(), cfg.Cluster.NodeTTL.Duration)
	if err != nil {
		return fmt.Errorf("status: the cluster store cannot be read: %w", err)
	}
	if *jsonOut {
		return printJSON(stdout, clusterStatusJSON(st))
	}
	printClusterStatus(stdout, st, time.Now())
	return nil
}

// clusterStatusDoc is `wharf cluster status -json`'s document.
type clusterStatusDoc struct {
	SchemaVersion int              `json:"schema_version"`
	Bans          int              `json:"bans"`
	ConfigDiffers []string         `json:"config_differs"`
	Nodes         []clusterNodeDoc `json:"nodes"`
}

type clusterNodeDoc struct {
	ID            string    `json:"id"`
	Version       string    `json:"version"`
	ConfigHash    string    `json:"config_hash"`
	ConfigDiffers bool      `json:"config_differs"`
	Started       time.Time `json:"started"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Alive         bool      `json:"alive"`
	Sessions      int       `json:"sessions"`
}

func clusterStatusJSON(st cluster.Status) clusterStatusDoc {
	d := clusterStatusDoc{SchemaVersion: st.SchemaVersion, Bans: st.Bans, ConfigDiffers: st.ConfigDiffers, Nodes: []clusterNodeDoc{}}
	if d.ConfigDiffers == nil {
		d.ConfigDiffers = []string{}
	}
	for _, n := range st.Nodes {
		d.Nodes = append(d.Nodes, clusterNodeDoc{ID: n.ID, Version: n.Version, ConfigHash: n.ConfigHash,
			ConfigDiffers: differs(st, n.ID), Started: n.Started, LastHeartbeat: n.LastHeartbeat, Alive: n.Alive, Sessions: n.Sessions})
	}
	return d
}

func differs(st cluster.Status, id string) bool {
	for _, d := range st.ConfigDiffers {
		if d == id {
			return true
		}
	}
	return false
}

// printClusterStatus prints the nodes, one a line, and what an operator must look at.
func printClusterStatus(w io.Writer, st cluster.Status, now time.Time) {
	alive, sessions := 0, 0
	for _, n := range st.Nodes {
		if n.Alive {
			alive++
			sessions += n.Sessions
		}
	}
	fmt.Fprintf(w, "schema version %d; %d of %d node(s) alive; %d live session(s); %d ban(s) in force\n\n",
		st.SchemaVersion, alive, len(st.Nodes), sessions, st.Bans)
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "no node has joined the cluster")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVERSION\tCONFIG\tALIVE\tSESSIONS\tLAST HEARTBEAT")
	for _, n := range st.Nodes {
		hash := shortHash(n.ConfigHash)
		if differs(st, n.ID) {
			hash += " (differs)"
		}
		live := "yes"
		if !n.Alive {
			live = "no"
		}
		hb := "-"
		if !n.LastHeartbeat.IsZero() {
			hb = age(now.Sub(n.LastHeartbeat)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", truncateText(n.ID, 60), dash(truncateText(n.Version, 30)), dash(hash), live, n.Sessions, hb)
	}
	_ = tw.Flush()
	if len(st.ConfigDiffers) > 0 {
		fmt.Fprintf(w, "\nwarning: %d live node(s) run a configuration that differs from the most common one: %s\n",
			len(st.ConfigDiffers), strings.Join(st.ConfigDiffers, ", "))
	}
}

// cmdConfig prints the embedded default config, or a loaded one as wharf reads it (defaults
// applied, paths made absolute, secrets as their references: never their values).
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	const synopsis = "wharf config print-default\n       wharf config print [-c FILE]"
	fs := newFlagSet("config", synopsis, stderr)
	file := fs.String("c", "", "config file (default: the embedded default config)")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "print-default" && pos[0] != "print") {
		return usageError("usage: %s", synopsis)
	}
	if pos[0] == "print-default" {
		if *file != "" {
			return usageError("print-default takes no -c (print -c FILE prints a file as loaded)")
		}
		_, err = stdout.Write(defaultConfig())
		return err
	}
	var cfg *config.Config
	if *file != "" {
		cfg, err = config.Load(*file)
	} else {
		var cwd string
		if cwd, err = os.Getwd(); err == nil {
			cfg, err = config.LoadDefault(cwd)
		}
	}
	if err != nil {
		return err
	}
	// For reading: every key is shown, also those that do not apply (an s3 key of a disk
	// vfs), so the output is not a file to load back.
	fmt.Fprintf(stdout, "# %s as loaded: every key with its value or default; secrets shown as their references\n", configName(*file))
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return err
	}
	return enc.Close()
}
