package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/logicspike/mediad/internal/media"
)

const (
	maxParts      = 16      // parts in one upload form, the file included
	maxFieldBytes = 4 << 10 // one text field (Uppy's name, type, relativePath …)
	formOverhead  = 1 << 20 // what may surround the file: part headers and text fields
)

// handleUpload streams the one file part of a multipart form to the
// service, without buffering it.
func handleUpload(svc *media.Service, log *slog.Logger, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		purpose := r.URL.Query().Get("purpose")
		limit := max(svc.MaxBytes(media.Attachment), svc.MaxBytes(media.Avatar), svc.MaxBytes(media.Logo))
		if p, err := media.ParsePurpose(purpose); err == nil {
			limit = svc.MaxBytes(p)
		}
		// Caps chunked bodies too; the exact per-purpose limit is enforced
		// on the file's bytes by the service.
		r.Body = http.MaxBytesReader(w, r.Body, limit+formOverhead)

		fail := func(err error) {
			m.uploads.WithLabelValues(purposeLabel(purpose), codeOf(err)).Inc()
			writeError(w, r, log, err)
		}
		if r.ContentLength > limit+formOverhead { // declared too large: refused before reading
			fail(&media.Error{Kind: media.KindTooLarge, Detail: fmt.Sprintf("the request body (%d bytes) is larger than this purpose allows", r.ContentLength)})
			return
		}
		idemKey := r.Header.Get("Idempotency-Key")
		if !validIdempotencyKey(idemKey) {
			fail(badRequest("Idempotency-Key must be 1–255 visible ASCII characters"))
			return
		}
		mr, err := r.MultipartReader()
		if mt, _, perr := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && (perr != nil || mt != "multipart/form-data") {
			err = errors.New("the Content-Type is not multipart/form-data")
		}
		if err != nil {
			fail(badRequest("expected a multipart/form-data body with a boundary: %v", err))
			return
		}
		form := &uploadForm{mr: mr}
		part, err := form.nextFile(&purpose)
		if err != nil {
			fail(err)
			return
		}
		p, err := media.ParsePurpose(purpose)
		if err != nil {
			fail(err)
			return
		}
		f, replayed, err := svc.Upload(r.Context(), actorOf(r), media.UploadRequest{
			IdempotencyKey: idemKey,
			Purpose:        p,
			Filename:       part.FileName(),
			Body:           &fileBody{part: part, form: form},
		})
		if err != nil {
			fail(err)
			return
		}
		w.Header().Set("Location", "/files/"+f.ID)
		if replayed {
			m.uploads.WithLabelValues(string(p), "replayed").Inc()
			writeJSON(w, http.StatusOK, f)
			return
		}
		m.uploads.WithLabelValues(string(p), "created").Inc()
		m.bytes.WithLabelValues(string(p)).Add(float64(f.Size))
		writeJSON(w, http.StatusCreated, f)
	})
}

// uploadForm walks the parts of an upload form: text fields before the
// file (purpose among them; the rest ignored), exactly one file part named
// "file", and nothing but text fields after it.
type uploadForm struct {
	mr    *multipart.Reader
	parts int
}

func (f *uploadForm) next() (*multipart.Part, error) {
	p, err := f.mr.NextPart()
	if err != nil {
		return nil, err
	}
	if f.parts++; f.parts > maxParts {
		return nil, badRequest("more than %d parts in the form", maxParts)
	}
	return p, nil
}

// nextFile reads the fields before the file part and returns the file
// part. A purpose field sets *purpose when the query did not.
func (f *uploadForm) nextFile(purpose *string) (*multipart.Part, error) {
	for {
		p, err := f.next()
		if err == io.EOF {
			return nil, badRequest("no file part named \"file\" in the form")
		}
		if err != nil {
			return nil, formError(err)
		}
		if p.FormName() == "file" {
			return p, nil
		}
		if p.FileName() != "" {
			return nil, badRequest("unexpected file part %q: send exactly one file part named \"file\"", p.FormName())
		}
		value, err := readField(p)
		if err != nil {
			return nil, err
		}
		if p.FormName() == "purpose" && *purpose == "" {
			*purpose = strings.TrimSpace(value)
		}
	}
}

// rest reads what follows the file part: text fields only.
func (f *uploadForm) rest() error {
	for {
		p, err := f.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return formError(err)
		}
		if p.FormName() == "file" || p.FileName() != "" {
			return badRequest("more than one file part: send exactly one file part named \"file\"")
		}
		if _, err := readField(p); err != nil {
			return err
		}
	}
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
	if err != nil {
		return "", formError(err)
	}
	if len(b) > maxFieldBytes {
		return "", badRequest("form field %q is longer than %d bytes", p.FormName(), maxFieldBytes)
	}
	return string(b), nil
}

// fileBody is the file part as the service reads it. At the part's end it
// checks the rest of the form, so that a malformed or second file part
// fails the upload before it can become ready.
type fileBody struct {
	part *multipart.Part
	form *uploadForm
	end  error // what the end of the part turned out to be, once known
}

func (b *fileBody) Read(p []byte) (int, error) {
	if b.end != nil {
		return 0, b.end
	}
	n, err := b.part.Read(p)
	if err == io.EOF {
		b.end = io.EOF
		if rerr := b.form.rest(); rerr != nil {
			b.end = rerr
		}
		return n, b.end
	}
	return n, err
}

// validIdempotencyKey accepts an absent key, or 1–255 visible ASCII
// characters (a UUID, usually; the draft's sf-string).
func validIdempotencyKey(k string) bool {
	if len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func badRequest(format string, args ...any) error {
	return &media.Error{Kind: media.KindBadRequest, Detail: fmt.Sprintf(format, args...)}
}

// formError is a failure to read the form: the body ended early, broke
// the multipart syntax, or went past the size cap.
func formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &media.Error{Kind: media.KindBody, Detail: "the request body is too large", Err: err}
	}
	return &media.Error{Kind: media.KindBody, Detail: "malformed multipart body", Err: err}
}

func codeOf(err error) string {
	_, code := statusOf(err)
	return code
}

// purposeLabel keeps the metric's label set closed.
func purposeLabel(p string) string {
	if _, err := media.ParsePurpose(p); err != nil {
		return "unknown"
	}
	return p
}
