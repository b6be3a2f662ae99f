// Command trivydb writes a small Trivy vulnerability DB (schema 2) for dragnet's test fixtures.
//
// It reads an advisory file written by the Rust fixture (sandbox/src/fixture) and writes
// OUT/trivy.db, a real BoltDB laid out the way Trivy reads it, and OUT/metadata.json. The
// input is decoded into typed structs that reject unknown fields, so a typo in the Rust tables
// fails here instead of silently producing a DB that Trivy reads differently.
//
// Usage: trivydb -in advisories.json -out DIR
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// input is the whole advisory file.
type input struct {
	UpdatedAt       time.Time
	NextUpdate      time.Time
	DownloadedAt    time.Time
	DataSources     []dataSourceEntry
	Advisories      []advisoryEntry
	Vulnerabilities []vulnerabilityEntry
}

// dataSourceEntry names the source of one platform bucket, e.g. "debian 12".
type dataSourceEntry struct {
	Bucket string
	Source dataSource
}

type dataSource struct {
	ID   string `json:",omitempty"`
	Name string `json:",omitempty"`
	URL  string `json:",omitempty"`
}

// advisoryEntry is one (platform bucket, package bucket, vulnerability ID) key.
type advisoryEntry struct {
	Bucket          string
	Package         string
	VulnerabilityID string
	Advisory        advisory
}

// advisory mirrors the stored form of trivy-db's types.Advisory: Status is the integer index
// of the status (2 affected, 5 will_not_fix, ...), Severity the package-specific severity.
type advisory struct {
	VendorIDs          []string `json:",omitempty"`
	Status             int      `json:",omitempty"`
	Severity           int      `json:",omitempty"`
	FixedVersion       string   `json:",omitempty"`
	VulnerableVersions []string `json:",omitempty"`
	PatchedVersions    []string `json:",omitempty"`
	UnaffectedVersions []string `json:",omitempty"`
}

type vulnerabilityEntry struct {
	ID            string
	Vulnerability vulnerability
}

type cvss struct {
	V2Vector string  `json:",omitempty"`
	V3Vector string  `json:",omitempty"`
	V2Score  float64 `json:",omitempty"`
	V3Score  float64 `json:",omitempty"`
}

// vulnerability mirrors trivy-db's types.Vulnerability (VendorSeverity: 1 low .. 4 critical).
type vulnerability struct {
	Title            string          `json:",omitempty"`
	Description      string          `json:",omitempty"`
	Severity         string          `json:",omitempty"`
	CweIDs           []string        `json:",omitempty"`
	VendorSeverity   map[string]int  `json:",omitempty"`
	CVSS             map[string]cvss `json:",omitempty"`
	References       []string        `json:",omitempty"`
	PublishedDate    *time.Time      `json:",omitempty"`
	LastModifiedDate *time.Time      `json:",omitempty"`
}

// metadata is Trivy's db/metadata.json.
type metadata struct {
	Version      int
	NextUpdate   time.Time
	UpdatedAt    time.Time
	DownloadedAt time.Time
}

// schemaVersion is the Trivy DB schema this program writes.
const schemaVersion = 2

func main() {
	in := flag.String("in", "", "advisory file (JSON) written by the Rust fixture")
	out := flag.String("out", "", "directory to write trivy.db and metadata.json into")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: trivydb -in advisories.json -out DIR")
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintf(os.Stderr, "trivydb: %v\n", err)
		os.Exit(1)
	}
}

func run(inPath, outDir string) error {
	raw, err := os.ReadFile(inPath)
	if err != nil {
		return fmt.Errorf("reading advisory file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in input
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("decoding advisory file %s: %w", inPath, err)
	}
	if err := check(&in); err != nil {
		return err
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", outDir, err)
	}
	dbPath := filepath.Join(outDir, "trivy.db")
	// A stale file would be reopened and appended to: start from nothing.
	if err := os.Remove(dbPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing old %s: %w", dbPath, err)
	}
	if err := writeDB(dbPath, &in); err != nil {
		return err
	}
	return writeMetadata(filepath.Join(outDir, "metadata.json"), &in)
}

// check rejects input that Trivy would read without complaint but wrongly.
func check(in *input) error {
	sources := map[string]bool{}
	for _, ds := range in.DataSources {
		sources[ds.Bucket] = true
	}
	vulns := map[string]bool{}
	for _, v := range in.Vulnerabilities {
		if vulns[v.ID] {
			return fmt.Errorf("vulnerability %s is listed twice", v.ID)
		}
		vulns[v.ID] = true
	}
	for _, a := range in.Advisories {
		if !sources[a.Bucket] {
			return fmt.Errorf("advisory %s uses bucket %q, which has no data source", a.VulnerabilityID, a.Bucket)
		}
		if !vulns[a.VulnerabilityID] {
			return fmt.Errorf("advisory %s has no vulnerability detail", a.VulnerabilityID)
		}
		if a.Package == "" {
			return fmt.Errorf("advisory %s in %q has no package", a.VulnerabilityID, a.Bucket)
		}
	}
	if in.UpdatedAt.IsZero() || in.NextUpdate.IsZero() {
		return fmt.Errorf("UpdatedAt and NextUpdate must be set")
	}
	return nil
}

func writeDB(path string, in *input) error {
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, a := range in.Advisories {
			platform, err := tx.CreateBucketIfNotExists([]byte(a.Bucket))
			if err != nil {
				return fmt.Errorf("bucket %q: %w", a.Bucket, err)
			}
			pkg, err := platform.CreateBucketIfNotExists([]byte(a.Package))
			if err != nil {
				return fmt.Errorf("bucket %q/%q: %w", a.Bucket, a.Package, err)
			}
			if err := putJSON(pkg, a.VulnerabilityID, a.Advisory); err != nil {
				return err
			}
		}

		vulns, err := tx.CreateBucketIfNotExists([]byte("vulnerability"))
		if err != nil {
			return fmt.Errorf("bucket vulnerability: %w", err)
		}
		for _, v := range in.Vulnerabilities {
			if err := putJSON(vulns, v.ID, v.Vulnerability); err != nil {
				return err
			}
		}

		sources, err := tx.CreateBucketIfNotExists([]byte("data-source"))
		if err != nil {
			return fmt.Errorf("bucket data-source: %w", err)
		}
		for _, ds := range in.DataSources {
			if err := putJSON(sources, ds.Bucket, ds.Source); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key string, value interface{}) error {
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if err := b.Put([]byte(key), encoded); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

func writeMetadata(path string, in *input) error {
	meta := metadata{
		Version:      schemaVersion,
		NextUpdate:   in.NextUpdate.UTC(),
		UpdatedAt:    in.UpdatedAt.UTC(),
		DownloadedAt: in.DownloadedAt.UTC(),
	}
	encoded, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encoding metadata: %w", err)
	}
	if err := os.WriteFile(path, encoded, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
