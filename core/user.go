package core

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/internal/authkeys"
)

// Perm is a set of permissions on a mount.
type Perm uint16

// Permissions, as named in the config (config.md: home/folders permissions).
const (
	PermList Perm = 1 << iota
	PermDownload
	PermUpload
	PermOverwrite
	PermDelete
	PermRename
	PermMkdir
	PermRmdir
	PermChmod
	PermChtimes

	PermAll = PermList | PermDownload | PermUpload | PermOverwrite | PermDelete | PermRename |
		PermMkdir | PermRmdir | PermChmod | PermChtimes
)

var permNames = map[string]Perm{
	"list": PermList, "download": PermDownload, "upload": PermUpload, "overwrite": PermOverwrite,
	"delete": PermDelete, "rename": PermRename, "mkdir": PermMkdir, "rmdir": PermRmdir,
	"chmod": PermChmod, "chtimes": PermChtimes, "all": PermAll,
}

// ParsePerms turns config permission names into a Perm.
func ParsePerms(names []string) (Perm, error) {
	var p Perm
	for _, n := range names {
		v, ok := permNames[strings.ToLower(n)]
		if !ok {
			return 0, fmt.Errorf("unknown permission %q", n)
		}
		p |= v
	}
	return p, nil
}

// Has reports whether p includes every permission of q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// Protocol names, as Session.GetProtocol() reports them and as users' subsystems list them.
const (
	ProtoSFTP  = "SFTP"
	ProtoSCP   = "SCP"
	ProtoFTP   = "FTP"
	ProtoFTPES = "FTPES"
	ProtoFTPS  = "FTPS"
)

// Auth method names, as in auth_methods and the SSH protocol.
const (
	MethodPassword    = "password"
	MethodPublicKey   = "publickey"
	MethodInteractive = "keyboard-interactive"
)

// MountSpec is one entry of a user's mount table, before the backends are opened.
type MountSpec struct {
	Path  string // virtual mount point
	VFS   string // name of the site's vfs definition
	Perms Perm
}

// User is an account as configured (or the catch-all profile given the id of a
// script-authenticated login). It is immutable once built; the Lua User object reads it.
type User struct {
	ID          string
	Email       string
	Type        string
	Description string
	Subsystems  []string // protocols the user may use

	passwordHash string
	publicKeys   []authkeys.Key
	keyFile      *authkeys.File // authorized_keys_file, read again when it changes; nil if none
	TOTPSecret   string
	chains       [][]string // auth_methods: each chain is a sequence of methods
	Mounts       []MountSpec
	AllowFrom    []netip.Prefix
	MaxSessions  int
	UploadKiBps  int64
	DownKiBps    int64
	QuotaBytes   int64
	QuotaFiles   int64
	Handlers     []config.EventHandler // the user's own event handlers (run before the site's)
	catchAll     bool
}

// newUser builds a user; certs tells whether the site trusts certificate authorities, with
// which the user may log in by public key without keys of its own.
func newUser(c *config.User, certs bool) (*User, error) {
	u := &User{
		ID: c.ID, Email: c.Email, Type: c.Type, Description: c.Description,
		passwordHash: c.Password, TOTPSecret: c.TOTPSecret, AllowFrom: prefixes(c.AllowFrom),
		MaxSessions: c.MaxSessions, UploadKiBps: c.Bandwidth.Upload, DownKiBps: c.Bandwidth.Download,
		QuotaBytes: c.Quota.Bytes, QuotaFiles: c.Quota.Files, Handlers: c.EventHandlers,
		catchAll: c.ID == "*",
	}
	if u.Type == "" {
		u.Type = "normal"
	}
	u.Subsystems = upperAll(c.Subsystems)
	if len(u.Subsystems) == 0 {
		u.Subsystems = []string{ProtoSFTP, ProtoSCP, ProtoFTP, ProtoFTPES, ProtoFTPS}
	}
	for i, k := range c.PublicKeys {
		pk, err := authkeys.ParseLine(k)
		if err != nil {
			return nil, fmt.Errorf("user %q: public_keys[%d]: %w", c.ID, i, err)
		}
		u.publicKeys = append(u.publicKeys, pk)
	}
	if c.AuthorizedKeysFile != "" {
		f, err := authkeys.NewFile(c.AuthorizedKeysFile)
		if err != nil {
			return nil, fmt.Errorf("user %q: authorized_keys_file: %w", c.ID, err)
		}
		u.keyFile = f
	}
	for _, m := range c.AuthMethods {
		u.chains = append(u.chains, strings.Split(strings.ToLower(m), "+"))
	}
	if len(u.chains) == 0 {
		// Default: every method the user has credentials for; script-authenticated profiles may
		// use any method because a script decides.
		if u.passwordHash != "" || u.catchAll {
			u.chains = append(u.chains, []string{MethodPassword}, []string{MethodInteractive})
		}
		if len(u.publicKeys) > 0 || u.keyFile != nil || certs || u.catchAll {
			u.chains = append(u.chains, []string{MethodPublicKey})
		}
		if len(u.chains) == 0 {
			// No credentials: only a script can authenticate this user.
			u.chains = [][]string{{MethodPassword}, {MethodInteractive}, {MethodPublicKey}}
		}
	}
	if c.Home.VFS != "" {
		p, err := ParsePerms(orDefault(c.Home.Permissions, []string{"all"}))
		if err != nil {
			return nil, fmt.Errorf("user %q: home: %w", c.ID, err)
		}
		u.Mounts = append(u.Mounts, MountSpec{Path: "/", VFS: c.Home.VFS, Perms: p})
	}
	for vp, m := range c.Folders {
		p, err := ParsePerms(orDefault(m.Permissions, []string{"list", "download"}))
		if err != nil {
			return nil, fmt.Errorf("user %q: folders %s: %w", c.ID, vp, err)
		}
		u.Mounts = append(u.Mounts, MountSpec{Path: vp, VFS: m.VFS, Perms: p})
	}
	slices.SortFunc(u.Mounts, func(a, b MountSpec) int { return strings.Compare(a.Path, b.Path) })
	return u, nil
}

// keys returns the user's public keys: public_keys and the current authorized_keys_file.
// A problem with the file (it changed and is now bad, or is gone) is logged once per change;
// the file then gives no keys until it is fixed.
func (u *User) keys(log *slog.Logger) []authkeys.Key {
	if u.keyFile == nil {
		return u.publicKeys
	}
	fileKeys, fresh, err := u.keyFile.Keys()
	if err != nil && fresh {
		log.Error("authorized_keys_file unusable: its keys are refused until it is fixed", "user", u.ID, "err", err)
	}
	if len(fileKeys) == 0 {
		return u.publicKeys
	}
	return append(slices.Clip(u.publicKeys), fileKeys...)
}

// withID returns a copy of the catch-all profile for a script-authenticated user id.
func (u *User) withID(id string) *User {
	c := *u
	c.ID = id
	c.catchAll = false
	return &c
}

// GetID returns the user id (login name).
func (u *User) GetID() string { return u.ID }

// MayUse reports whether the user may use the protocol.
func (u *User) MayUse(protocol string) bool { return slices.Contains(u.Subsystems, protocol) }

// mayUseFamily reports whether the user may use any of the protocols.
func (u *User) mayUseFamily(protocols []string) bool {
	for _, p := range protocols {
		if u.MayUse(p) {
			return true
		}
	}
	return false
}

// allowedFrom reports whether the user may log in from ip.
func (u *User) allowedFrom(ip netip.Addr) bool {
	if len(u.AllowFrom) == 0 {
		return true
	}
	for _, p := range u.AllowFrom {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

func prefixes(ps []config.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Prefix)
	}
	return out
}

func upperAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, strings.ToUpper(s))
	}
	return out
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}
