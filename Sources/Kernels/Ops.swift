import Foundation

// Element-wise operations of the forward pass. Written with SIMD8<Float> so that
// `-target-cpu native` turns them into AVX2/AVX-512 code; all lengths here are multiples of 8
// except where a scalar tail is handled.

@inline(__always)
func simdLoad(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func simdStore(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: SIMD8<Float>) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// out = x / rms(x) * weight, over n elements.
@inline(__always)
public func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, n: Int, eps: Float) {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n { let v = simdLoad(x, i); acc += v * v; i += 8 }
    var sum = acc.sum()
    while i < n { sum += x[i] * x[i]; i += 1 }
    let scale = 1 / (sum / Float(n) + eps).squareRoot()
    i = 0
    while i + 8 <= n { simdStore(out, i, simdLoad(x, i) * scale * simdLoad(weight, i)); i += 8 }
    while i < n { out[i] = x[i] * scale * weight[i]; i += 1 }
}

/// x += y over n elements.
@inline(__always)
public func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, n: Int) {
    var i = 0
    while i + 8 <= n { simdStore(x, i, simdLoad(x, i) + simdLoad(y, i)); i += 8 }
    while i < n { x[i] += y[i]; i += 1 }
}

/// gate = silu(gate) * up over n elements (SwiGLU).
@inline(__always)
public func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, n: Int) {
    for i in 0..<n {
        let g = gate[i]
        gate[i] = g / (1 + expf(-g)) * up[i]
    }
}

/// Rotary position embedding for one head vector of `headDim`, rotating the first `dims` elements.
/// `neox` pairs element i with i + dims/2 (GPT-NeoX, Qwen); otherwise adjacent pairs (LLaMA).
@inline(__always)
public func rope(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, dims: Int, neox: Bool) {
    let half = dims / 2
    for i in 0..<half {
        let (a, b) = neox ? (i, i + half) : (2 * i, 2 * i + 1)
        let x0 = x[a], x1 = x[b]
        x[a] = x0 * cos[i] - x1 * sin[i]
        x[b] = x0 * sin[i] + x1 * cos[i]
    }
}

/// Fills cos/sin for one position: theta_i = pos * scale * base^(-2i/dims) / factor_i.
public func ropeAngles(position: Int, dims: Int, base: Float, positionScale: Float, freqFactors: UnsafePointer<Float>?,
                       cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
    let thetaScale = powf(base, -2 / Float(dims))
    var theta = Float(position) * positionScale
    for i in 0..<dims / 2 {
        let t = freqFactors.map { theta / $0[i] } ?? theta
        cos[i] = cosf(t)
        sin[i] = sinf(t)
        theta *= thetaScale
    }
}
