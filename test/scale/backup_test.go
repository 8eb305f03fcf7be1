package scale

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/regwardtest"
)

// The backup and restore procedures of docs/DEPLOY.md, run as written: an
// online SQLite backup with `sqlite3 .backup` while regward serves, and
// pg_dump/pg_restore of the replicas' database. A restore brings back the
// policy, the accounts (the old tokens work) and, with the data directory's
// files, the same gateway CA.
func TestBackupAndRestore(t *testing.T) {
	t.Run("sqlite", backupSQLite)
	t.Run("postgres", backupPostgres)
}

// single is a one-node `regward serve` on SQLite in data.
func startSingle(t *testing.T, name, data string) *replica {
	t.Helper()
	r := &replica{name: name, listen: regwardtest.FreeAddr(t), data: data}
	r.url = "http://" + r.listen
	r.Process = startProcess(t, name, []string{"REGWARD_ADMIN_PASSWORD=" + adminPassword},
		"serve", "--data", data, "--org", org, "--listen", r.listen, "--no-gateway")
	r.WaitHTTP(t, r.url+"/readyz", 60*time.Second)
	return r
}

func readToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// checkRestored checks that the restored control plane serves version
// want with host listed, knows alice, and hands out caPEM.
func checkRestored(t *testing.T, owner *client, want int64, host string, caPEM []byte) {
	t.Helper()
	p, v := owner.policyOf(t)
	if v != want || !listsHost(p, host) {
		t.Errorf("restored policy: version %d with %v, want version %d listing %s", v, p.RegistryAccess.Registries, want, host)
	}
	r := owner.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/members", nil, nil)
	if !bytes.Contains(r.body, []byte(`"alice"`)) {
		t.Errorf("restored members lack alice: %s", r.body)
	}
	if caPEM != nil {
		r = owner.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/gateway-ca.pem", nil, nil)
		if !bytes.Equal(r.body, caPEM) {
			t.Errorf("the restored installation serves another gateway CA")
		}
	}
}

func backupSQLite(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		requireEnv(t, "sqlite3 is not installed (Debian package sqlite3)")
	}
	data := t.TempDir()
	a := startSingle(t, "single", data)
	owner := newClient(a.url, readToken(t, data))
	addMember(t, owner, a.url, "alice", "member")
	v := owner.mustApply(t, policyAllowing("backed-up.example"), 0)
	ca := owner.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/gateway-ca.pem", nil, nil).body

	// Online backup, regward still serving and writing.
	backup := filepath.Join(t.TempDir(), "regward-backup.db")
	runTool(t, sqlite3, filepath.Join(data, "regward.db"), ".backup '"+backup+"'")
	owner.mustApply(t, policyAllowing("after-backup.example"), v)
	a.Stop(10 * time.Second)

	// Restore into a new data directory: the database, the gateway CA and
	// (optionally) the admin token.
	restored := t.TempDir()
	copyFile(t, backup, filepath.Join(restored, "regward.db"), 0o600)
	for _, f := range []string{"gateway-ca.pem", "gateway-ca-key.pem", "admin-token"} {
		copyFile(t, filepath.Join(data, f), filepath.Join(restored, f), 0o600)
	}
	b := startSingle(t, "restored", restored)
	if strings.Contains(b.Output(), "first run") {
		t.Fatalf("the restored data directory was bootstrapped again:\n%s", b.Output())
	}
	checkRestored(t, newClient(b.url, readToken(t, data)), v, "backed-up.example", ca)
}

func backupPostgres(t *testing.T) {
	if err := pgtest.Available(); err != nil {
		requireEnv(t, "%v", err)
	}
	pgDump, pgRestore := filepath.Join(pgtest.BinDir(), "pg_dump"), filepath.Join(pgtest.BinDir(), "pg_restore")
	for _, p := range []string{pgDump, pgRestore} {
		if _, err := os.Stat(p); err != nil {
			requireEnv(t, "%s: %v (Debian package postgresql-client-15)", p, err)
		}
	}
	c := startCluster(t, 1)
	r := c.replicas[0]
	owner := newClient(r.url, c.adminToken)
	addMember(t, owner, r.url, "alice", "member")
	v := owner.mustApply(t, policyAllowing("backed-up.example"), 0)

	dump := filepath.Join(t.TempDir(), "regward.dump")
	runTool(t, pgDump, "--format=custom", "--file", dump, c.dsn)
	owner.mustApply(t, policyAllowing("after-backup.example"), v)
	r.Stop(10 * time.Second)

	// Restore into an empty database and point a replica at it.
	target := pgtest.DSN(t)
	runTool(t, pgRestore, "--no-owner", "--exit-on-error", "--dbname", target, dump)
	restored := &replica{name: "restored", listen: regwardtest.FreeAddr(t), data: t.TempDir(), dsn: target}
	restored.url = "http://" + restored.listen
	restored.start(t)
	if strings.Contains(restored.Output(), "first run") {
		t.Fatalf("the restored database was bootstrapped again:\n%s", restored.Output())
	}
	checkRestored(t, newClient(restored.url, c.adminToken), v, "backed-up.example", nil)
}
