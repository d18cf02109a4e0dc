package metadata

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxDocumentBytes bounds what we read from the metadata service or the
// config drive. Real documents are a few KiB (public keys and user
// metadata included); 1 MiB stops a broken proxy from exhausting memory.
const maxDocumentBytes = 1 << 20

// metadataService reads meta_data.json over HTTP from the link-local
// metadata service.
type metadataService struct {
	url    string
	client *http.Client
}

func newMetadataService(url string, timeout time.Duration) *metadataService {
	return &metadataService{
		url: url,
		client: &http.Client{
			Timeout: timeout,
			// A proxy from the environment cannot reach 169.254.169.254 on
			// our behalf, and must never see the instance's metadata.
			Transport: &http.Transport{Proxy: nil},
		},
	}
}

func (s *metadataService) name() string { return SourceMetadataService }

func (s *metadataService) read(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("metadata service URL %q: %w", s.url, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata service: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metadata service %s answered %s", s.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("metadata service: reading %s: %w", s.url, err)
	}
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("metadata service: %s is larger than %d bytes", s.url, maxDocumentBytes)
	}
	return data, nil
}
