package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery/imagerytest"
	"github.com/logicspike/mediad/internal/testsvc"
)

// TestChaos runs 300 uploads against a mediad process on PostgreSQL and
// versitygw while killing mediad (kill -9), stopping the store and cutting
// client connections at random. Afterwards, once the reaper has settled,
// every row must tell the truth: reconcile finds nothing missing and
// nothing orphaned, no row is left pending or deleting, every attachment
// answered 201 is ready with its bytes, and each user has at most one
// ready avatar.
func TestChaos(t *testing.T) {
	const uploads = 300
	s3 := testsvc.S3(t)
	env := s3Env(t, s3)
	env["REAP_PENDING_AFTER"], env["REAP_INTERVAL"] = "4s", "500ms"
	p := startProcess(t, env)
	db, err := openDatabase(context.Background(), loadConfig(t, env))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	avatars := make([][]byte, 4)
	for i := range avatars {
		avatars[i] = imagerytest.CameraJPEG(160+40*i, 120+30*i, 1+i%8, 85)
	}

	var (
		mu       sync.Mutex
		outcomes = map[string]int{}
		created  = map[string][]byte{} // attachment id → bytes sent
	)
	count := func(k string) { mu.Lock(); outcomes[k]++; mu.Unlock() }

	jobs := make(chan int)
	var workers sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second}
	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range jobs {
				purpose, content := "attachment", text(1024+rng.IntN(200<<10))
				switch r := rng.Float64(); {
				case r < 0.08:
					content = text(6<<20 + rng.IntN(2<<20)) // multipart on S3
				case r < 0.25:
					purpose, content = "avatar", avatars[rng.IntN(len(avatars))]
				}
				user := fmt.Sprintf("u_%d", i%5)
				ct, body := multipartBody(nil, "f.bin", content)
				ctx, cancel := context.WithCancel(context.Background())
				var reader io.Reader = bytes.NewReader(body)
				if rng.Float64() < 0.1 { // the client goes away part-way
					reader = &cutReader{r: reader, left: rng.IntN(len(body)), cancel: cancel}
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", p.URL()+"/upload?purpose="+purpose, reader)
				req.Header.Set("Content-Type", ct)
				req.Header.Set("x-user-id", user)
				resp, err := client.Do(req)
				if err != nil {
					count("no answer")
					cancel()
					time.Sleep(250 * time.Millisecond) // mediad is restarting: do not burn the jobs
					continue
				}
				var f struct{ ID string }
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				count(fmt.Sprint(resp.StatusCode))
				if resp.StatusCode == 201 && purpose == "attachment" {
					if err := json.Unmarshal(b, &f); err == nil {
						mu.Lock()
						created[f.ID] = content
						mu.Unlock()
					}
				}
			}
		}()
	}

	stopChaos := make(chan struct{})
	chaosDone := make(chan map[string]int)
	go func() {
		acts := map[string]int{}
		rng := rand.New(rand.NewPCG(7, 7))
		turn := 0
		for {
			select {
			case <-stopChaos:
				chaosDone <- acts
				return
			case <-time.After(time.Duration(150+rng.IntN(350)) * time.Millisecond):
			}
			turn++
			switch turn % 3 { // each fault in turn, at random moments
			case 0:
				acts["mediad killed"]++
				p.kill()
				time.Sleep(100 * time.Millisecond)
				p.start()
			case 1:
				acts["store stopped"]++
				s3.Stop()
				time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
				s3.Start(t)
			default:
				acts["quiet"]++
			}
		}
	}()
	for i := range uploads {
		jobs <- i
	}
	close(jobs)
	workers.Wait()
	close(stopChaos)
	acts := <-chaosDone

	// Settle: the reaper fails what was cut and removes what it left.
	ctx := context.Background()
	eventuallyWithin(t, 90*time.Second, "the reaper to settle", func() bool {
		n, err := db.MediaFile.Query().Where(mediafile.Or(
			mediafile.StatusIn(mediafile.StatusPending, mediafile.StatusDeleting),
			mediafile.LeftoverObjects(true),
		)).Count(ctx)
		return err == nil && n == 0 && len(s3.OpenUploads(t)) == 0
	})
	out, err := runCommand(t, env, "reconcile")
	if err != nil || !strings.Contains(out, "missing objects: 0\norphan objects: 0") {
		t.Fatalf("reconcile after chaos: %v\n%s", err, out)
	}
	store := openTestStore(t, env)
	for id, content := range created {
		row, err := db.MediaFile.Get(ctx, id)
		if err != nil || row.Status != mediafile.StatusReady || row.Sha256 != sum(content) {
			t.Fatalf("attachment %s answered 201 is %v (%v)", id, row, err)
		}
		if _, err := store.Stat(ctx, row.Key); err != nil {
			t.Fatalf("attachment %s: %v", id, err)
		}
	}
	for u := range 5 {
		n, _ := db.MediaFile.Query().Where(mediafile.UserID(fmt.Sprintf("u_%d", u)), mediafile.PurposeEQ(mediafile.PurposeAvatar), mediafile.StatusEQ(mediafile.StatusReady)).Count(ctx)
		if n > 1 {
			t.Fatalf("user u_%d has %d ready avatars", u, n)
		}
	}
	rows, _ := db.MediaFile.Query().All(ctx)
	statuses := map[mediafile.Status]int{}
	for _, r := range rows {
		statuses[r.Status]++
	}
	t.Logf("chaos: %d uploads; answers %v; chaos %v; rows %v; objects %d; %s", uploads, outcomes, acts, statuses, len(s3.Keys(t)), strings.ReplaceAll(strings.TrimSpace(out), "\n", ", "))
	if acts["mediad killed"] == 0 || acts["store stopped"] == 0 {
		t.Fatalf("the chaos did nothing: %v", acts)
	}
}

// cutReader stops part-way, as a client that goes away.
type cutReader struct {
	r      io.Reader
	left   int
	cancel context.CancelFunc
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}
