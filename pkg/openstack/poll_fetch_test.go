package openstack

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
)

// listSource answers batchFetch's GETs and listings from a set of ids,
// and counts the GETs.
type listSource struct {
	mu     sync.Mutex
	ids    map[string]bool
	gets   map[string]int
	getErr map[string]error
}

func (s *listSource) get(_ context.Context, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[id]++
	if err := s.getErr[id]; err != nil {
		return "", err
	}
	if !s.ids[id] {
		return "", &Error{Kind: KindNotFound, StatusCode: http.StatusNotFound}
	}
	return id, nil
}

func (s *listSource) list(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.ids {
		out = append(out, id)
	}
	return out, nil
}

func (s *listSource) set(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = map[string]bool{}
	for _, id := range ids {
		s.ids[id] = true
	}
}

// TestBatchFetchTrustsAListingForWhatItListedBefore: an id that a listing
// had and the next one lacks is gone without a GET; one never listed is
// confirmed with a GET; a failed GET is that id's alone.
func TestBatchFetchTrustsAListingForWhatItListedBefore(t *testing.T) {
	src := &listSource{gets: map[string]int{}, getErr: map[string]error{}}
	src.set("a", "b", "c")
	fetch := batchFetch(src.get, src.list, func(s string) string { return s })
	ctx := context.Background()
	if _, err := fetch(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	src.set("c") // a and b deleted
	src.getErr["new"] = &Error{Kind: KindUnavailable, StatusCode: http.StatusServiceUnavailable}
	out, err := fetch(ctx, []string{"a", "b", "never", "new"})
	if err != nil {
		t.Fatal(err)
	}
	if !out["a"].Gone || !out["b"].Gone || src.gets["a"]+src.gets["b"] != 0 {
		t.Errorf("a, b: %+v %+v after %d GETs; want gone from the listing alone", out["a"], out["b"], src.gets["a"]+src.gets["b"])
	}
	if !out["never"].Gone || src.gets["never"] != 1 {
		t.Errorf("never-listed id: %+v after %d GETs; want gone, confirmed by one GET", out["never"], src.gets["never"])
	}
	if out["new"].Err == nil || out["new"].Gone || src.gets["new"] != 1 {
		t.Errorf("id whose GET failed: %+v after %d GETs; want its own error, sent once", out["new"], src.gets["new"])
	}
	if out["c"].Value != "c" {
		t.Errorf("listed id c: %+v", out["c"])
	}
}

// TestBatchFetchSingleGetError: below the batch threshold a failed GET
// fails the fetch (its one waiter sees it).
func TestBatchFetchSingleGetError(t *testing.T) {
	boom := &Error{Kind: KindUnavailable, StatusCode: http.StatusServiceUnavailable}
	src := &listSource{gets: map[string]int{}, getErr: map[string]error{"a": boom}}
	src.set("a")
	_, err := batchFetch(src.get, src.list, func(s string) string { return s })(context.Background(), []string{"a"})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the GET's", err)
	}
}
