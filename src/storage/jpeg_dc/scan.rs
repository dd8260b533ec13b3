//! The scan: every MCU's blocks, their DC kept, then the blocks' means as RGB.

use super::entropy::{skip_ac, Bits, Huffman};
use super::{Component, Result, Small};

/// The frame and the scan's components (all of them, interleaved).
pub(super) struct Scan {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) comps: Vec<Component>,
    pub(super) restart_interval: usize,
}

impl Scan {
    /// The scan's data from `pos`; `coders` are each component's DC and AC tables.
    pub(super) fn decode(
        self,
        data: &[u8],
        pos: usize,
        coders: &[(&Huffman, &Huffman)],
    ) -> Result<Small> {
        let hmax = self.comps.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = self.comps.iter().map(|c| c.v).max().unwrap_or(1);
        // One component alone is coded block by block; several, MCU by MCU.
        let single = self.comps.len() == 1;
        let (mcux, mcuy) = if single {
            (self.width.div_ceil(8), self.height.div_ceil(8))
        } else {
            (
                self.width.div_ceil(8 * hmax),
                self.height.div_ceil(8 * vmax),
            )
        };
        let layout: Vec<(usize, usize)> = self
            .comps
            .iter()
            .map(|c| if single { (1, 1) } else { (c.h, c.v) })
            .collect();
        let mut planes: Vec<Vec<i32>> = layout
            .iter()
            .map(|&(h, v)| vec![0; mcux * h * mcuy * v])
            .collect();
        let mut bits = Bits::new(data, pos);
        let mut pred = vec![0i32; self.comps.len()];
        let total = mcux * mcuy;
        for m in 0..total {
            if self.restart_interval > 0 && m > 0 && m % self.restart_interval == 0 {
                bits.restart()?;
                pred.fill(0);
            }
            let (mx, my) = (m % mcux, m / mcux);
            for (ci, &(dc, ac)) in coders.iter().enumerate() {
                let (h, v) = layout[ci];
                let stride = mcux * h;
                for by in 0..v {
                    for bx in 0..h {
                        pred[ci] += bits.dc_difference(dc)?;
                        skip_ac(&mut bits, ac)?;
                        planes[ci][(my * v + by) * stride + mx * h + bx] = pred[ci];
                    }
                }
            }
        }
        Ok(self.to_rgb(&planes, &layout, mcux, hmax, vmax))
    }

    /// The blocks' means as pixels, chroma taken from the block that covers each one.
    fn to_rgb(
        &self,
        planes: &[Vec<i32>],
        layout: &[(usize, usize)],
        mcux: usize,
        hmax: usize,
        vmax: usize,
    ) -> Small {
        let (ow, oh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let single = self.comps.len() == 1;
        let sample = |ci: usize, x: usize, y: usize| -> i32 {
            let (h, _) = layout[ci];
            let c = &self.comps[ci];
            let (sx, sy) = if single {
                (x, y)
            } else {
                (x * c.h / hmax, y * c.v / vmax)
            };
            let dc = planes[ci][sy * mcux * h + sx];
            ((dc * c.dc_quant) >> 3) + 128
        };
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        let mut rgb = Vec::with_capacity(ow * oh * 3);
        for y in 0..oh {
            for x in 0..ow {
                let l = sample(0, x, y);
                if single {
                    let g = clamp(l);
                    rgb.extend_from_slice(&[g, g, g]);
                    continue;
                }
                let (cb, cr) = (sample(1, x, y) - 128, sample(2, x, y) - 128);
                rgb.extend_from_slice(&[
                    clamp(l + ((91_881 * cr) >> 16)),
                    clamp(l - ((22_554 * cb + 46_802 * cr) >> 16)),
                    clamp(l + ((116_130 * cb) >> 16)),
                ]);
            }
        }
        Small {
            width: ow as u32,
            height: oh as u32,
            rgb,
        }
    }
}
