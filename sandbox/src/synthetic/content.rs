//! Layer contents for the synthetic organization: deterministic noise for bulk, and the fixture's
//! own OS layers (real dpkg and apk databases) so that Trivy finds real CVEs in every image.
//!
//! Bulk layers are filled from a xorshift stream seeded by what the layer is (the runtime, a
//! package's dependencies, one version's application): the same seed always gives the same
//! bytes and digest, and noise does not compress, so a "100 MB" layer costs 100 MB on the wire.

use std::io::Write as _;

use anyhow::{Context as _, bail};

use crate::fixture::{self, ImageShape, LayerSpec};
use crate::oci::{self, Blob, Layer, LayerEntry};

/// The size of each file in a bulk layer: large images are many files, as real ones are.
const BULK_FILE_BYTES: usize = 1 << 20;

/// A deterministic byte stream (xorshift64*), fast enough to fill hundreds of MiB in a second.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
}

impl Noise {
    /// A stream for `seed`. The seed goes through splitmix64's mixer, a bijection, so distinct
    /// seeds (even neighbours) start distinct streams.
    pub fn new(seed: u64) -> Noise {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Noise {
            state: if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z },
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buffer` from the stream.
    pub fn fill(&mut self, buffer: &mut [u8]) {
        let mut chunks = buffer.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// A layer of `bytes` of noise under `dir`, in files of at most 1 MiB, seeded by `seed`.
///
/// Gzipped at level 1: noise does not shrink at any level, and level 1 is several times faster
/// to build, which matters for the benchmark's 100 MB layers.
pub fn bulk_layer(dir: &str, seed: u64, bytes: usize) -> anyhow::Result<Layer> {
    if bytes == 0 {
        bail!("a bulk layer under {dir} needs at least one byte");
    }
    let mut noise = Noise::new(seed);
    let mut data = vec![0u8; bytes];
    noise.fill(&mut data);
    let paths: Vec<String> = (0..bytes.div_ceil(BULK_FILE_BYTES))
        .map(|n| format!("{dir}/part-{n:04}.bin"))
        .collect();
    let entries = data
        .chunks(BULK_FILE_BYTES)
        .zip(&paths)
        .map(|(contents, path)| LayerEntry {
            path,
            contents,
            mode: 0o644,
        });
    let tar = oci::layer::layer_tar(entries)?;
    let mut gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(tar.len() + 4096),
            flate2::Compression::new(1),
        );
    gzip.write_all(&tar).context("gzipping a bulk layer")?;
    let gzipped = gzip.finish().context("gzipping a bulk layer")?;
    Ok(Layer {
        blob: Blob::new(oci::OCI_LAYER_GZIP, gzipped),
        diff_id: oci::sha256_digest(&tar),
        uncompressed_size: tar.len() as u64,
    })
}

/// Builds a layer from a fixture layer spec (gzip level 6, as the fixture pushes it).
pub fn fixture_layer(spec: &LayerSpec) -> anyhow::Result<Layer> {
    oci::build_layer(spec.files.iter().map(|file| LayerEntry {
        path: &file.path,
        contents: &file.contents,
        mode: file.mode,
    }))
}

/// The fixture layers the synthetic images are made of, each built once.
pub struct FixtureLayers {
    /// Debian 12.1 with a vulnerable glibc, OpenSSL, ncurses and zlib.
    pub debian_base: Layer,
    /// Package databases laid over the Debian base: each changes what is found.
    pub debian_tops: Vec<Layer>,
    /// Alpine 3.18 base and an OpenSSL layer, for amd64.
    pub alpine_amd64: Vec<Layer>,
    /// The same for arm64 (another OpenSSL version, other findings).
    pub alpine_arm64: Vec<Layer>,
}

impl FixtureLayers {
    /// Takes the layers from the fixture world's `infra/base`, `products/bfx/samtools`,
    /// `products/bfx/bwa` and `products/bfx/multiarch` images.
    pub fn from_fixture() -> anyhow::Result<FixtureLayers> {
        let world = fixture::world();
        let images = |package: &str, tag: &str| -> anyhow::Result<Vec<Vec<LayerSpec>>> {
            let version = world
                .packages
                .iter()
                .filter(|p| p.name == package)
                .flat_map(|p| &p.versions)
                .find(|v| v.tags.iter().any(|t| t == tag))
                .with_context(|| format!("the fixture has no {package}:{tag}"))?;
            Ok(match &version.shape {
                ImageShape::Single(image) | ImageShape::MissingBlob(image) => {
                    vec![image.layers.clone()]
                }
                ImageShape::Index(images) => images.iter().map(|i| i.layers.clone()).collect(),
            })
        };
        let layer = |package: &str, tag: &str, image: usize, layer: usize| {
            let images = images(package, tag)?;
            let spec = images
                .get(image)
                .and_then(|layers| layers.get(layer))
                .with_context(|| format!("the fixture's {package}:{tag} has no layer {layer}"))?;
            fixture_layer(spec)
        };
        let all = |package: &str, tag: &str, image: usize| -> anyhow::Result<Vec<Layer>> {
            let images = images(package, tag)?;
            let specs = images
                .get(image)
                .with_context(|| format!("the fixture's {package}:{tag} has no image {image}"))?;
            specs.iter().map(fixture_layer).collect()
        };
        Ok(FixtureLayers {
            debian_base: layer("infra/base", "bookworm", 0, 0)?,
            debian_tops: vec![
                layer("products/bfx/samtools", "1.17", 0, 1)?,
                layer("products/bfx/samtools", "1.18", 0, 1)?,
                layer("products/bfx/bwa", "0.7.17", 0, 1)?,
            ],
            alpine_amd64: all("products/bfx/multiarch", "3.0", 0)?,
            alpine_arm64: all("products/bfx/multiarch", "3.0", 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_does_not_compress() {
        let mut a = vec![0u8; 1 << 16];
        let mut b = vec![0u8; 1 << 16];
        Noise::new(7).fill(&mut a);
        Noise::new(7).fill(&mut b);
        assert_eq!(a, b);
        Noise::new(8).fill(&mut b);
        assert_ne!(a, b, "neighbouring seeds give different streams");

        let layer = bulk_layer("opt/data", 7, 3 << 20).unwrap();
        assert!(layer.blob.bytes.len() >= 3 << 20, "noise must not shrink");
        assert_eq!(
            layer.blob.digest,
            bulk_layer("opt/data", 7, 3 << 20).unwrap().blob.digest
        );
    }

    #[test]
    fn fixture_layers_carry_package_databases() {
        let layers = FixtureLayers::from_fixture().unwrap();
        assert_eq!(layers.debian_tops.len(), 3);
        assert_eq!(layers.alpine_amd64.len(), 2);
        assert_ne!(
            layers.alpine_amd64[1].blob.digest,
            layers.alpine_arm64[1].blob.digest
        );
    }
}
