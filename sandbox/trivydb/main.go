// Command trivydb writes a small Trivy vulnerability DB (schema 2) for dragnet's test fixtures.
//
// It reads an advisory file written by the Rust fixture (sandbox/src/fixture) and writes
// OUT/trivy.db, a real BoltDB laid out the way Trivy reads it, and OUT/metadata.json. The
// input is decoded into typed structs that reject unknown fields, so a typo in the Rust tables
// fails here instead of silently producing a DB that Trivy reads differently.
//
// With -pad N it also writes N generated advisories against made-up Debian packages (none of
// which any image installs), so that benchmarks download and open a DB of realistic size. The
// padding is deterministic: the same N gives the same bytes.
//
// Usage: trivydb -in advisories.json -out DIR [-pad N]
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
	pad := flag.Int("pad", 0, "generated advisories to add against made-up packages")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: trivydb -in advisories.json -out DIR")
		os.Exit(2)
	}
	if *pad < 0 {
		fmt.Fprintln(os.Stderr, "trivydb: -pad must not be negative")
		os.Exit(2)
	}
	if err := run(*in, *out, *pad); err != nil {
		fmt.Fprintf(os.Stderr, "trivydb: %v\n", err)
		os.Exit(1)
	}
}

func run(inPath, outDir string, pad int) error {
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
	addPadding(&in, pad)

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

// The bucket padding advisories go to, and how many advisories each made-up package gets.
const (
	padBucket         = "debian 12"
	padPerPackage     = 8
	padVocabularySize = 4096
)

// padRandom is splitmix64: tiny, fast, and the same on every platform and Go release.
type padRandom struct{ state uint64 }

func (r *padRandom) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *padRandom) below(n int) int { return int(r.next() % uint64(n)) }

// padVocabulary makes words from syllables, so descriptions compress like English prose
// rather than like noise or like one repeated sentence.
func padVocabulary(r *padRandom) []string {
	syllables := []string{"ab", "ac", "al", "an", "ar", "be", "ca", "ce", "co", "de", "di", "el",
		"en", "er", "es", "fi", "ga", "he", "ic", "in", "io", "is", "la", "le", "li", "lo", "ma",
		"me", "mi", "mo", "na", "ne", "no", "nt", "on", "or", "pa", "pe", "po", "pr", "ra", "re",
		"ri", "ro", "sa", "se", "si", "st", "ta", "te", "ti", "to", "tr", "ul", "un", "ur", "va",
		"ve", "vi"}
	words := make([]string, padVocabularySize)
	for i := range words {
		n := 1 + r.below(4)
		word := ""
		for j := 0; j < n; j++ {
			word += syllables[r.below(len(syllables))]
		}
		words[i] = word
	}
	return words
}

func padSentence(r *padRandom, words []string, min, max int) string {
	n := min + r.below(max-min+1)
	out := make([]byte, 0, n*8)
	for i := 0; i < n; i++ {
		if i > 0 {
			out = append(out, ' ')
		}
		// Zipf-like: low indexes are far more frequent, as in prose.
		index := r.below(len(words))
		index = index * r.below(len(words)) / len(words)
		out = append(out, words[index]...)
	}
	return string(out)
}

// addPadding appends n advisories for made-up packages (dragnet-pad-NNNNN) with full
// vulnerability records: title, description, CVSS, CWE, references and dates.
func addPadding(in *input, n int) {
	if n == 0 {
		return
	}
	r := &padRandom{state: 0x5EED}
	words := padVocabulary(r)
	severities := []string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}
	published := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("CVE-2090-%07d", i)
		pkg := fmt.Sprintf("dragnet-pad-%05d", i/padPerPackage)
		severity := 1 + r.below(4)
		fix := advisory{FixedVersion: fmt.Sprintf("%d.%d.%d-%d+deb12u%d",
			r.below(10), r.below(30), r.below(100), 1+r.below(5), 1+r.below(9))}
		if r.below(5) == 0 {
			fix = advisory{Status: 2}
		}
		in.Advisories = append(in.Advisories, advisoryEntry{
			Bucket: padBucket, Package: pkg, VulnerabilityID: id, Advisory: fix,
		})

		refs := make([]string, 1+r.below(4))
		for j := range refs {
			refs[j] = fmt.Sprintf("https://security.example.org/advisories/%s/%016x",
				words[r.below(len(words))], r.next())
		}
		date := published.Add(time.Duration(r.below(90000)) * time.Hour)
		modified := date.Add(time.Duration(r.below(9000)) * time.Hour)
		score := float64(10+r.below(90)) / 10
		in.Vulnerabilities = append(in.Vulnerabilities, vulnerabilityEntry{ID: id,
			Vulnerability: vulnerability{
				Title:       padSentence(r, words, 4, 10),
				Description: padSentence(r, words, 30, 90),
				Severity:    severities[severity-1],
				CweIDs:      []string{fmt.Sprintf("CWE-%d", 20+r.below(900))},
				VendorSeverity: map[string]int{"debian": severity,
					"nvd": 1 + r.below(4)},
				CVSS: map[string]cvss{"nvd": {
					V3Vector: fmt.Sprintf("CVSS:3.1/AV:N/AC:%s/PR:N/UI:N/S:U/C:H/I:H/A:H",
						[]string{"L", "H"}[r.below(2)]),
					V3Score: score,
				}},
				References:       refs,
				PublishedDate:    &date,
				LastModifiedDate: &modified,
			}})
	}
}
