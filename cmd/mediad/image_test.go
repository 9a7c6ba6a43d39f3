package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/logicspike/mediad/ent/mediafile"
	"github.com/logicspike/mediad/internal/imagery/imagerytest"
	"github.com/logicspike/mediad/internal/media"
)

// imageBackends: the image paths run against both databases and both stores.
var imageBackends = []backend{{"sqlite", "disk"}, {"postgres", "s3"}}

func forEachImageBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range imageBackends {
		t.Run(b.String(), func(t *testing.T) { f(t, b) })
	}
}

// stored reads an object back from the store.
func (s *server) stored(t *testing.T, key string) []byte {
	t.Helper()
	rc, _, err := s.store.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileKeys(f media.File) []string {
	keys := []string{f.Key}
	for _, v := range f.Variants {
		keys = append(keys, strings.TrimPrefix(v.URL, v.URL[:strings.Index(v.URL, f.Scope)]))
	}
	slices.Sort(keys)
	return keys
}

func TestAvatarFromACameraPhoto(t *testing.T) {
	photo := imagerytest.Photo12MP() // 4032×3024, EXIF orientation 6, metadata holding the marker
	forEachImageBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		acme := who{user: "u_alice", tenant: "t_acme"} // an avatar is the user's even in a tenant
		f := s.mustUpload(t, acme, "avatar", "IMG_0001.JPG", photo)

		if f.Scope != "users/u_alice" || f.TenantID != nil || f.ContentType != "image/jpeg" || !strings.HasSuffix(f.Key, f.ID+".jpg") {
			t.Fatalf("file %+v", f)
		}
		if f.Width == nil || *f.Width != 1536 || *f.Height != 2048 {
			t.Fatalf("master %vx%v, want portrait 1536x2048", f.Width, f.Height)
		}
		master := s.stored(t, f.Key)
		if int64(len(master)) != f.Size || sum(master) != f.SHA256 {
			t.Fatal("size/sha256 do not describe the stored master")
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(master))
		if err != nil || cfg.Width != 1536 || cfg.Height != 2048 {
			t.Fatalf("stored master %+v %v", cfg, err)
		}
		want := map[string]int{"sm": 64, "md": 128, "lg": 256}
		if len(f.Variants) != 3 {
			t.Fatalf("variants %v", f.Variants)
		}
		for name, px := range want {
			v := f.Variants[name]
			if v.Width != px || v.Height != px || v.ContentType != "image/jpeg" || !strings.HasSuffix(v.URL, f.ID+"_"+name+".jpg") {
				t.Errorf("variant %s: %+v", name, v)
			}
		}
		for _, key := range fileKeys(f) {
			obj := s.stored(t, key)
			if bytes.Contains(obj, []byte("Exif")) || bytes.Contains(obj, []byte(imagerytest.Marker)) {
				t.Errorf("%s keeps metadata of the upload", key)
			}
			if key != f.Key {
				c, err := jpeg.DecodeConfig(bytes.NewReader(obj))
				if err != nil || c.Width != c.Height {
					t.Errorf("%s: %+v %v", key, c, err)
				}
			}
		}
		if got := s.objects(t); len(got) != 4 {
			t.Fatalf("objects %v", got)
		}
		expectProblem(t, s.do(t, acme, "GET", "/files/"+f.ID, nil, nil), 404, "not_found") // the tenant scope does not hold it
		resp := s.do(t, alice, "GET", "/files/"+f.ID+"/variants/sm", nil, nil)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != f.Variants["sm"].URL {
			t.Fatalf("variant redirect %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestLogoKeepsAlphaAndAspect(t *testing.T) {
	forEachImageBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		logo := imagerytest.LogoPNG(1000, 400)
		expectProblem(t, s.upload(t, alice, "logo", "logo.png", logo), 403, "forbidden")

		acme := who{user: "u_alice", tenant: "t_acme"}
		f := s.mustUpload(t, acme, "logo", "logo.png", logo)
		if f.Scope != "t_acme" || f.ContentType != "image/png" || !strings.HasSuffix(f.Key, ".png") || *f.Width != 1000 || *f.Height != 400 {
			t.Fatalf("logo %+v", f)
		}
		for name, wh := range map[string][2]int{"lg": {512, 205}, "md": {128, 51}, "sm": {64, 26}} {
			v := f.Variants[name]
			if v.Width != wh[0] || v.Height != wh[1] || v.ContentType != "image/png" {
				t.Errorf("%s: %+v", name, v)
			}
		}
		sm := s.stored(t, fileKeys(f)[2])
		img, err := png.Decode(bytes.NewReader(sm))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("corner alpha %d, want transparent", a)
		}
		// A small logo is never upscaled.
		small := s.mustUpload(t, acme, "logo", "small.png", imagerytest.LogoPNG(100, 40))
		if v := small.Variants["lg"]; v.Width != 100 || v.Height != 40 {
			t.Errorf("small logo lg %+v", v)
		}
		resp := s.do(t, who{}, "GET", "/tenants/t_acme/logo?size=lg", nil, nil)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != small.Variants["lg"].URL || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=60") {
			t.Fatalf("logo widget %d %v", resp.StatusCode, resp.Header)
		}
	})
}

func TestAnimatedGIFGivesItsFirstFrame(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, nil)
	f := s.mustUpload(t, alice, "avatar", "anim.gif", imagerytest.TwoFrameGIF(120, 90))
	img, _, err := image.Decode(bytes.NewReader(s.stored(t, f.Key)))
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := img.At(60, 45).RGBA()
	if g>>8 < 150 || r>>8 > 60 || b>>8 > 60 {
		t.Fatalf("centre pixel %d,%d,%d: not the green first frame", r>>8, g>>8, b>>8)
	}
	if *f.Width != 120 || *f.Height != 90 || f.Variants["lg"].Width != 90 {
		t.Fatalf("gif master %dx%d, lg %+v", *f.Width, *f.Height, f.Variants["lg"])
	}
}

func TestHostileImagesAreRefusedAndLeaveNothing(t *testing.T) {
	forEachImageBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		jpg := imagerytest.CameraJPEG(640, 480, 1, 90)
		p := expectProblem(t, s.upload(t, alice, "avatar", "bomb.png", imagerytest.PNGHeaderOnly(30000, 30000)), 422, "invalid_image")
		if !strings.Contains(p.Detail, "pixels") {
			t.Errorf("bomb detail %q", p.Detail)
		}
		expectProblem(t, s.upload(t, alice, "avatar", "cut.jpg", jpg[:len(jpg)/2]), 422, "invalid_image")
		p = expectProblem(t, s.upload(t, alice, "avatar", "me.png", []byte("<!DOCTYPE html><html><body>hi</body></html>")), 415, "unsupported_media_type")
		if !strings.Contains(p.Detail, "text/html") || !strings.Contains(p.Detail, "image/webp") {
			t.Errorf("html detail %q", p.Detail)
		}
		expectProblem(t, s.upload(t, alice, "avatar", "me.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)), 415, "unsupported_media_type")
		expectProblem(t, s.upload(t, alice, "avatar", "doc.pdf", []byte("%PDF-1.4\n1 0 obj\n")), 415, "unsupported_media_type")
		for _, r := range s.rows(t) {
			if r.Status != mediafile.StatusFailed {
				t.Errorf("row %s is %s", r.ID, r.Status)
			}
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects %v", keys)
		}
		expectProblem(t, s.do(t, who{}, "GET", "/users/u_alice/avatar", nil, nil), 404, "not_found")
	})
}

func TestReplacingAnAvatarRemovesTheOldOne(t *testing.T) {
	forEachImageBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		first := s.mustUpload(t, alice, "avatar", "a.jpg", imagerytest.CameraJPEG(400, 300, 1, 90))
		second := s.mustUpload(t, alice, "avatar", "b.jpg", imagerytest.CameraJPEG(300, 400, 1, 90))
		if got, want := s.objects(t), fileKeys(second); !slices.Equal(sorted(got), want) {
			t.Fatalf("objects %v, want only the new avatar's %v", got, want)
		}
		expectProblem(t, s.do(t, alice, "GET", "/files/"+first.ID, nil, nil), 404, "not_found")
		for size, url := range map[string]string{"": second.Variants["md"].URL, "sm": second.Variants["sm"].URL, "original": second.URL} {
			resp := s.do(t, who{}, "GET", "/users/u_alice/avatar?size="+size, nil, nil)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != url {
				t.Fatalf("size %q: %d %q", size, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		expectProblem(t, s.do(t, who{}, "GET", "/users/u_alice/avatar?size=huge", nil, nil), 400, "bad_request")
		expectProblem(t, s.do(t, who{}, "GET", "/users/u_bob/avatar", nil, nil), 404, "not_found")

		// Deleting the current avatar removes every object and the pointer.
		if resp := s.do(t, alice, "DELETE", "/files/"+second.ID, nil, nil); resp.StatusCode != 204 {
			t.Fatalf("delete %d", resp.StatusCode)
		}
		if keys := s.objects(t); len(keys) != 0 {
			t.Fatalf("objects %v", keys)
		}
		expectProblem(t, s.do(t, who{}, "GET", "/users/u_alice/avatar", nil, nil), 404, "not_found")
	})
}

func TestConcurrentAvatarUploadsLeaveOneCurrent(t *testing.T) {
	forEachImageBackend(t, func(t *testing.T, b backend) {
		s := start(t, b, nil)
		const n = 6
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ct, body := multipartBody(nil, "a.jpg", imagerytest.CameraJPEG(300+i*10, 300, 1, 90))
				req, _ := http.NewRequest("POST", s.URL+"/upload?purpose=avatar", bytes.NewReader(body))
				req.Header.Set("Content-Type", ct)
				alice.set(req.Header)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		for _, c := range codes {
			if c != 201 {
				t.Fatalf("codes %v", codes)
			}
		}
		var p media.Page
		decode(t, s.do(t, alice, "GET", "/files?purpose=avatar&status=all", nil, nil), 200, &p)
		if len(p.Files) != 1 || p.Files[0].Status != "ready" {
			t.Fatalf("avatars left: %+v", p.Files)
		}
		if got, want := sorted(s.objects(t)), fileKeys(p.Files[0]); !slices.Equal(got, want) {
			t.Fatalf("objects %v, want %v", got, want)
		}
		if rows := s.rows(t); len(rows) != 1 {
			t.Fatalf("rows %d", len(rows))
		}
		resp := s.do(t, who{}, "GET", "/users/u_alice/avatar", nil, nil)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != p.Files[0].Variants["md"].URL {
			t.Fatalf("widget %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
