package core

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// dummyHash is compared against when the user does not exist and the site has no user with a
// hashed password (see dummyHashFor).
const dummyHash = "$2a$10$gk67jnghsP2FbV59AMbg/eE8udJECZWuxdBik48JDnyS4.IDEyZeC"

// dummyHashFor picks the hash an unknown user's password is checked against, so that an
// unknown user costs the same time as a wrong password (no user enumeration by timing): a
// configured user's hash of the algorithm most users have (the first in config order; ties go
// to the algorithm met first), hence the same algorithm and cost parameters. The result of that
// check is always discarded. Without hashed passwords, the bcrypt dummyHash.
func dummyHashFor(hashes []string) string {
	first := map[string]string{}
	count := map[string]int{}
	var order []string
	for _, h := range hashes {
		var alg string
		switch {
		case memoryHardHash(h):
			alg = "argon2id"
		case strings.HasPrefix(h, "$2"):
			alg = "bcrypt"
		default:
			continue
		}
		if count[alg] == 0 {
			first[alg] = h
			order = append(order, alg)
		}
		count[alg]++
	}
	best := ""
	for _, alg := range order {
		if best == "" || count[alg] > count[best] {
			best = alg
		}
	}
	if best == "" {
		return dummyHash
	}
	return first[best]
}

// HashPassword returns an argon2id hash of password (the default of `wharf hash-password`).
func HashPassword(password string) (string, error) {
	// OWASP's recommended argon2id floor: 19 MiB, 2 iterations, 1 thread. It keeps a login
	// under ~30 ms on a small server while making offline guessing expensive.
	return argon2id.CreateHash(password, &argon2id.Params{Memory: 19 * 1024, Iterations: 2,
		Parallelism: 1, SaltLength: 16, KeyLength: 32})
}

// HashPasswordBcrypt returns a bcrypt hash (cost 10).
func HashPasswordBcrypt(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// checkPassword compares password with a stored hash in constant time. An empty hash never
// matches. memoryHard reports whether the check ran a memory-hard hash (argon2id, 19 MiB at
// the default cost), after which the site returns the freed memory to the OS.
func checkPassword(hash, password string) (ok, memoryHard bool) {
	switch {
	case hash == "":
		_, memoryHard = checkPassword(dummyHash, password)
		return false, memoryHard
	case strings.HasPrefix(hash, "plain:"):
		want := strings.TrimPrefix(hash, "plain:")
		return subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1, false
	case memoryHardHash(hash):
		match, err := argon2id.ComparePasswordAndHash(password, hash)
		return err == nil && match, true
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil, false
	}
	return false, false
}

// memoryHardHash reports whether hash is an argon2id hash.
func memoryHardHash(hash string) bool { return strings.HasPrefix(hash, "$argon2id$") }

// checkTOTP validates a 6-digit RFC 6238 code (30 s step, one step of skew).
func checkTOTP(secret, code string, now time.Time) bool {
	if secret == "" || len(code) != 6 {
		return false
	}
	ok, err := totp.ValidateCustom(code, secret, now, totp.ValidateOpts{
		Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	return err == nil && ok
}
