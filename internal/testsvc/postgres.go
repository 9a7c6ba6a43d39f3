package testsvc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// pgBinGlobs are searched (newest version first) after the directory of
// pg_ctl in $PATH. Debian/Ubuntu packages do not put initdb, pg_ctl and
// postgres on $PATH.
var pgBinGlobs = []string{
	"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
	"/usr/pgsql-*/bin",          // PGDG RPMs
	"/usr/local/pgsql/bin",      // built from source
}

// pgServer is the PostgreSQL server shared by all tests of a test binary.
type pgServer struct {
	binDir  string
	dir     string // temp dir: socket dir, log file, data dir; owned by the server user
	dataDir string
	port    int
	cred    *syscall.Credential // nil: run as the current user
	proc    *proc
	admin   *sql.DB // connection pool to the "postgres" database as superuser
}

var sharedPG struct {
	once    sync.Once
	mu      sync.Mutex // guards the fields below
	srv     *pgServer
	err     error
	stopped bool
}

// dbSeq numbers the databases created by Postgres.
var dbSeq atomic.Int64

// Postgres returns a DSN (postgres://…?sslmode=disable) for a fresh, empty
// database of the test's own. All databases live on one PostgreSQL server
// shared by the whole test binary (initdb is slow): it is started on first
// use and stopped by [Main]. Each call does CREATE DATABASE with a unique name
// (derived from the test's name); t.Cleanup drops it again (best effort, with
// FORCE, so connections the test left open do not prevent it).
//
// The server listens on 127.0.0.1 only, trusts every connection (the DSN has
// no password) and runs with fsync off: it is for tests only. The user is
// the superuser "postgres". Postgres is safe to call from parallel tests.
//
// It fails the test if the PostgreSQL binaries are missing (run
// `make test-deps`) or if the test binary's TestMain does not call [Main].
func Postgres(t testing.TB) string {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatalf("testsvc.Postgres: this test package must call testsvc.Main(m) from its TestMain " +
			"(func TestMain(m *testing.M) { testsvc.Main(m) }) so the shared PostgreSQL server is stopped at the end")
	}
	srv, err := sharedPostgres()
	if err != nil {
		t.Fatalf("testsvc.Postgres: %v", err)
	}

	name := dbName(t.Name())
	ident := quoteIdent(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.admin.ExecContext(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testsvc.Postgres: CREATE DATABASE %s: %v\n%s", ident, err, logTail(srv.logPath()))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := srv.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Logf("testsvc.Postgres: dropping database %s: %v", ident, err)
		}
	})
	return srv.dsn(name)
}

func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *pgServer) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// dbName derives a unique, valid (≤ 63 bytes, [a-z0-9_]) database name from
// a test name, to make leftovers easy to attribute.
func dbName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := fmt.Sprintf("test_%d_%s", dbSeq.Add(1), b.String())
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// sharedPostgres starts the shared server on first use. A failure to start
// is remembered: later callers fail at once with the same error.
func sharedPostgres() (*pgServer, error) {
	sharedPG.once.Do(func() {
		srv, err := startPostgres()
		sharedPG.mu.Lock()
		sharedPG.srv, sharedPG.err = srv, err
		sharedPG.mu.Unlock()
	})
	sharedPG.mu.Lock()
	defer sharedPG.mu.Unlock()
	if sharedPG.stopped {
		return nil, errors.New("the shared PostgreSQL server has already been stopped by testsvc.Main")
	}
	return sharedPG.srv, sharedPG.err
}

// stopSharedPostgres stops the shared server (pg_ctl stop -m immediate, then
// SIGKILL if need be) and removes its directory. Safe to call more than once.
func stopSharedPostgres() error {
	sharedPG.mu.Lock()
	srv := sharedPG.srv
	sharedPG.srv = nil
	sharedPG.stopped = true
	sharedPG.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.stop()
}

func (s *pgServer) stop() error {
	var errs []error
	if s.admin != nil {
		s.admin.Close()
	}
	if s.proc != nil && !s.proc.exited() {
		stopErr := s.pgCtlStop()
		if stopErr == nil {
			select {
			case <-s.proc.done:
			case <-time.After(10 * time.Second):
				stopErr = errors.New("postgres still running 10s after pg_ctl stop")
			}
		}
		if stopErr != nil {
			errs = append(errs, fmt.Errorf("%w\n%s", stopErr, logTail(s.logPath())))
			if err := s.proc.kill(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pgCtlStop runs pg_ctl stop -m immediate and waits for it.
func (s *pgServer) pgCtlStop() error {
	p, err := startProc(filepath.Join(s.binDir, "pg_ctl"),
		[]string{"stop", "-D", s.dataDir, "-m", "immediate", "-w", "-t", "20"},
		s.procOpts())
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("pg_ctl stop: %v", p.waitErr)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.kill()
		return errors.New("pg_ctl stop: timed out")
	}
}

func (s *pgServer) procOpts() procOpts {
	return procOpts{
		dir:      s.dir,
		env:      baseEnv(),
		logPath:  s.logPath(),
		cred:     s.cred,
		deathSig: syscall.SIGQUIT, // postmaster: immediate shutdown
	}
}

// startPostgres runs initdb in a new temp dir and starts postgres on a free
// port, retrying with another port if the chosen one got taken meanwhile.
func startPostgres() (_ *pgServer, err error) {
	binDir, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}

	base := os.TempDir()
	if cred != nil && !othersCanEnter(base) {
		base = "/tmp" // the postgres user must be able to reach its directory
	}
	dir, err := newTempDir(base, "testsvc-pg-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{binDir: binDir, dir: dir, dataDir: filepath.Join(dir, "data"), cred: cred}
	defer func() {
		if err != nil {
			if s.proc != nil {
				_ = s.proc.kill()
			}
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown %s to the postgres user: %w", dir, err)
		}
	}

	initdb, err := startProc(filepath.Join(binDir, "initdb"),
		[]string{"-D", s.dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"},
		s.procOpts())
	if err != nil {
		return nil, err
	}
	select {
	case <-initdb.done:
	case <-time.After(2 * startTimeout):
		_ = initdb.kill()
		return nil, fmt.Errorf("initdb did not finish within %v\n%s", 2*startTimeout, logTail(s.logPath()))
	}
	if initdb.waitErr != nil {
		return nil, fmt.Errorf("initdb failed: %v\n%s", initdb.waitErr, logTail(s.logPath()))
	}

	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.startServer()
		if err == nil {
			return s, nil
		}
		inUse := s.proc != nil && s.proc.addrInUse()
		if s.proc != nil {
			_ = s.proc.kill()
			s.proc = nil
		}
		if s.admin != nil {
			s.admin.Close()
			s.admin = nil
		}
		if !inUse || attempt == 3 {
			return nil, fmt.Errorf("starting PostgreSQL (%s): %v\n%s", binDir, err, logTail(s.logPath()))
		}
	}
}

// startServer starts postgres on s.port and waits until it accepts
// connections.
func (s *pgServer) startServer() error {
	p, err := startProc(filepath.Join(s.binDir, "postgres"), []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=200",
	}, s.procOpts())
	if err != nil {
		return err
	}
	s.proc = p

	admin, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		return err
	}
	admin.SetMaxOpenConns(8)
	admin.SetMaxIdleConns(2)
	s.admin = admin
	wantDir, err := filepath.EvalSymlinks(s.dataDir)
	if err != nil {
		return err
	}
	return p.waitReady(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// Make sure it is our server that answers, not one that took the port.
		var gotDir string
		if err := admin.QueryRowContext(ctx, "SHOW data_directory").Scan(&gotDir); err != nil {
			return err
		}
		if gotDir != wantDir && gotDir != s.dataDir {
			return fmt.Errorf("port %d is served by another PostgreSQL (data directory %s)", s.port, gotDir)
		}
		return nil
	})
}

// findPostgresBin returns a directory holding initdb, pg_ctl and postgres.
func findPostgresBin() (string, error) {
	var cands []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			cands = append(cands, d)
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			add(filepath.Dir(real))
		}
		if abs, err := filepath.Abs(p); err == nil {
			add(filepath.Dir(abs))
		}
	}
	for _, pattern := range pgBinGlobs {
		matches, _ := filepath.Glob(pattern)
		sort.SliceStable(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
		for _, m := range matches {
			add(m)
		}
	}
	for _, d := range cands {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found next to pg_ctl in $PATH nor in %s; %s",
		strings.Join(pgBinGlobs, ", "), installHint)
}

var versionRE = regexp.MustCompile(`\d+(\.\d+)?`)

// pgVersion extracts the version number from an install path, 0 if none.
func pgVersion(path string) float64 {
	v, _ := strconv.ParseFloat(versionRE.FindString(path), 64)
	return v
}

// postgresCredential returns the credentials of the "postgres" OS user when
// running as root (PostgreSQL refuses to run as root), nil otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and there is no \"postgres\" OS user to run it as (%v); %s", err, installHint)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: gid %q: %w", u.Gid, err)
	}
	// Groups nil (and NoSetGroups false) drops root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// othersCanEnter reports whether every directory from dir up to / can be
// traversed by any user (o+x), so that a directory made in dir and chowned to
// the postgres user is reachable by it.
func othersCanEnter(dir string) bool {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
