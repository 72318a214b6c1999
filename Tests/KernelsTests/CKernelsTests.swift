import CKernels
import Foundation
import Testing

// Tests of the C kernels against scalar references. Weights are built by quantising random floats
// with rk_quantize_row_ref (or are random bytes with sane fp16 scales, to hit extreme quants); the
// reference is rk_dequantize_row with a double-precision dot product. rk_matmul quantises the
// activations to 8 bits per block (rk_activation_block tells the block size), so the tight check
// compares against the dot with those quantised activations, emulated here.

struct WeightType: CustomTestStringConvertible, Sendable {
    let name: String
    let id: Int32
    var testDescription: String { name }
    var isFloat: Bool { id == Int32(RK_F32) || id == Int32(RK_F16) || id == Int32(RK_BF16) }
    var blockSize: Int { Int(rk_block_size(id)) }
}

let floatTypes = [
    WeightType(name: "F32", id: Int32(RK_F32)), WeightType(name: "F16", id: Int32(RK_F16)),
    WeightType(name: "BF16", id: Int32(RK_BF16)),
]
let quantTypes = [
    WeightType(name: "Q4_0", id: Int32(RK_Q4_0)), WeightType(name: "Q4_1", id: Int32(RK_Q4_1)),
    WeightType(name: "Q5_0", id: Int32(RK_Q5_0)), WeightType(name: "Q5_1", id: Int32(RK_Q5_1)),
    WeightType(name: "Q8_0", id: Int32(RK_Q8_0)), WeightType(name: "Q4_K", id: Int32(RK_Q4_K)),
    WeightType(name: "Q5_K", id: Int32(RK_Q5_K)), WeightType(name: "Q6_K", id: Int32(RK_Q6_K)),
]
let allTypes = floatTypes + quantTypes

/// ISAs this machine can run (1 = AVX2, 2 = AVX-512 VNNI); the portable path (0) is always there.
let isas: [Int32] = {
    let best = rk_isa()
    return best >= 2 ? [0, 1, 2] : best == 1 ? [0, 1] : [0]
}()

struct RNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func uniform() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    mutating func normal() -> Float {
        let u = uniform() + 1e-12, v = uniform()
        return Float((-2 * log(u)).squareRoot() * cos(6.283185307179586 * v))
    }
}

/// rows x K weights of `type`, quantised from random floats (with per-row scale and offset variety).
func makeWeights(_ t: WeightType, rows: Int, K: Int, rng: inout RNG) -> [UInt8] {
    let rs = rk_row_size(t.id, Int64(K))
    var w = [UInt8](repeating: 0, count: rs * rows)
    var row = [Float](repeating: 0, count: K)
    for r in 0..<rows {
        for k in 0..<K { row[k] = rng.normal() * Float(1 + r % 3) + (r % 5 == 0 ? 0.3 : 0) }
        let n = w.withUnsafeMutableBytes { rk_quantize_row_ref(t.id, row, $0.baseAddress! + r * rs, Int64(K)) }
        precondition(n == rs)
    }
    return w
}

/// Random bytes, with every fp16 scale / min replaced by a small finite value.
func randomBlocks(_ t: WeightType, rows: Int, K: Int, rng: inout RNG) -> [UInt8] {
    let rs = rk_row_size(t.id, Int64(K))
    let bytesPerBlock = rs / (K / t.blockSize)
    var w = (0..<(rs * rows)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 24) }
    let halfOffsets: [Int]
    switch Int(t.id) {
    case RK_Q4_1, RK_Q5_1, RK_Q4_K, RK_Q5_K: halfOffsets = [0, 2]
    case RK_Q6_K: halfOffsets = [208]
    default: halfOffsets = [0]
    }
    for b in 0..<(rows * rs / bytesPerBlock) {
        for o in halfOffsets {
            let h = rk_fp32_to_fp16(rng.normal() * 0.01)
            w[b * bytesPerBlock + o] = UInt8(h & 0xff)
            w[b * bytesPerBlock + o + 1] = UInt8(h >> 8)
        }
    }
    return w
}

func dequantize(_ t: WeightType, _ w: [UInt8], rows: Int, K: Int) -> [Float] {
    let rs = rk_row_size(t.id, Int64(K))
    var out = [Float](repeating: 0, count: rows * K)
    w.withUnsafeBytes { wb in
        out.withUnsafeMutableBufferPointer { ob in
            for r in 0..<rows { rk_dequantize_row(t.id, wb.baseAddress! + r * rs, ob.baseAddress! + r * K, Int64(K)) }
        }
    }
    return out
}

/// The activations as rk_matmul_isa sees them: 8-bit per block of `block` (0: unchanged).
func quantisedActivations(_ x: [Float], K: Int, block: Int) -> [Double] {
    guard block > 0 else { return x.map(Double.init) }
    var out = [Double](repeating: 0, count: x.count)
    for b in stride(from: 0, to: x.count, by: block) {
        var amax: Float = 0
        for i in b..<(b + block) { amax = max(amax, abs(x[i])) }
        let d = amax / 127, id: Float = amax > 0 ? 127 / amax : 0
        for i in b..<(b + block) { out[i] = Double(d) * Double((x[i] * id).rounded(.toNearestOrEven)) }
    }
    return out
}

func matmul(isa: Int32, _ t: WeightType, _ w: [UInt8], rows: Int, K: Int, _ x: [Float], T: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: rows * T)
    w.withUnsafeBytes { wb in rk_matmul_isa(isa, t.id, wb.baseAddress!, Int32(rows), Int32(K), x, Int32(T), &y) }
    return y
}

func randomVector(_ n: Int, rng: inout RNG) -> [Float] {
    (0..<n).map { i in rng.normal() * (i % 7 == 0 ? 3 : 1) }
}

/// Worst |y - ref| / sum|w * x| over all outputs, with x as the kernel quantised it.
func worstError(isa: Int32, _ t: WeightType, _ w: [UInt8], rows: Int, K: Int, _ x: [Float], T: Int) -> Double {
    let wd = dequantize(t, w, rows: rows, K: K)
    let y = matmul(isa: isa, t, w, rows: rows, K: K, x, T: T)
    let block = isa == 0 ? 0 : Int(rk_activation_block(isa, t.id))
    var worst = 0.0
    for tk in 0..<T {
        let xq = quantisedActivations(Array(x[(tk * K)..<((tk + 1) * K)]), K: K, block: block)
        for r in 0..<rows {
            var ref = 0.0, mag = 0.0
            for k in 0..<K {
                let p = Double(wd[r * K + k]) * xq[k]
                ref += p
                mag += abs(p)
            }
            worst = max(worst, abs(Double(y[tk * rows + r]) - ref) / max(mag, 1e-30))
        }
    }
    return worst
}

func shapes(_ t: WeightType) -> [Int] {
    switch t.blockSize {
    case 256: return [256, 768, 1536, 4864]
    case 32: return [32, 96, 256, 576, 896, 1536]
    default: return [8, 100, 256, 576]
    }
}

@Suite("C kernels", .serialized)
struct CKernelsTests {
    @Test("type table reports block and row sizes")
    func typeTable() {
        #expect(rk_block_size(Int32(RK_Q4_K)) == 256)
        #expect(rk_block_size(Int32(RK_Q8_0)) == 32)
        #expect(rk_block_size(Int32(RK_F16)) == 1)
        #expect(rk_row_size(Int32(RK_Q4_0), 64) == 36)
        #expect(rk_row_size(Int32(RK_Q4_1), 64) == 40)
        #expect(rk_row_size(Int32(RK_Q5_0), 32) == 22)
        #expect(rk_row_size(Int32(RK_Q5_1), 32) == 24)
        #expect(rk_row_size(Int32(RK_Q8_0), 32) == 34)
        #expect(rk_row_size(Int32(RK_Q4_K), 512) == 288)
        #expect(rk_row_size(Int32(RK_Q5_K), 256) == 176)
        #expect(rk_row_size(Int32(RK_Q6_K), 256) == 210)
        #expect(rk_row_size(Int32(RK_BF16), 10) == 20)
        #expect(rk_row_size(Int32(RK_Q4_K), 100) == 0)
        for t in allTypes { #expect(rk_type_supported(t.id) == 1) }
        #expect(rk_type_supported(Int32(RK_Q2_K)) == 0)
        #expect(rk_type_supported(Int32(RK_Q3_K)) == 0)
        #expect(rk_type_supported(99) == 0)
    }

    @Test("fp16 conversion is exact and rounds to nearest even")
    func fp16() {
        for h in UInt16(0)...UInt16.max where (h & 0x7c00) != 0x7c00 {
            #expect(rk_fp32_to_fp16(rk_fp16_to_fp32(h)) == h)
        }
        #expect(rk_fp16_to_fp32(0x3c00) == 1)
        #expect(rk_fp16_to_fp32(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(rk_fp32_to_fp16(1 + 1.0 / 2048) == 0x3c00) // halfway: to even
        #expect(rk_fp32_to_fp16(1 + 3.0 / 2048) == 0x3c02)
        #expect(rk_fp32_to_fp16(70000) == 0x7c00)
    }

    @Test("reference quantiser round-trips within the format's precision", arguments: allTypes)
    func roundTrip(_ t: WeightType) {
        var rng = RNG(1)
        let K = 512
        let x = (0..<K).map { _ in rng.normal() }
        var w = [UInt8](repeating: 0, count: rk_row_size(t.id, Int64(K)))
        #expect(rk_quantize_row_ref(t.id, x, &w, Int64(K)) == w.count)
        var y = [Float](repeating: 0, count: K)
        rk_dequantize_row(t.id, w, &y, Int64(K))
        var err = 0.0, mag = 0.0
        for i in 0..<K {
            err += Double(x[i] - y[i]) * Double(x[i] - y[i])
            mag += Double(x[i]) * Double(x[i])
        }
        let tolerances = ["F32": 1e-9, "F16": 1e-3, "BF16": 5e-3, "Q8_0": 1e-2, "Q6_K": 0.05]
        let tolerance = tolerances[t.name] ?? 0.15
        #expect((err / mag).squareRoot() < tolerance, "\(t.name): relative RMS error \((err / mag).squareRoot())")
    }

    @Test("matmul matches reference dequantisation", arguments: allTypes)
    func matmulMatchesReference(_ t: WeightType) {
        var rng = RNG(UInt64(t.id) + 7)
        for K in shapes(t) {
            let rows = 37, T = 9
            let w = makeWeights(t, rows: rows, K: K, rng: &rng)
            let x = randomVector(K * T, rng: &rng)
            for isa in isas {
                let e = worstError(isa: isa, t, w, rows: rows, K: K, x, T: T)
                #expect(e < 2e-6, "\(t.name) K=\(K) isa \(isa): relative error \(e)")
            }
            // and against the unquantised activations: off by at most the activation rounding,
            // |w| * d/2 per element (d = the block's amax / 127)
            let wd = dequantize(t, w, rows: rows, K: K)
            let block = Int(rk_activation_block(rk_isa(), t.id))
            let y = matmul(isa: rk_isa(), t, w, rows: rows, K: K, x, T: T)
            for tk in 0..<T {
                let xt = Array(x[(tk * K)..<((tk + 1) * K)])
                var halfStep = [Double](repeating: 0, count: K)
                if block > 0 {
                    for b in stride(from: 0, to: K, by: block) {
                        let amax = xt[b..<(b + block)].map { abs($0) }.max()!
                        for k in b..<(b + block) { halfStep[k] = Double(amax) / 127 / 2 }
                    }
                }
                for r in 0..<rows {
                    var ref = 0.0, mag = 0.0, bound = 0.0
                    for k in 0..<K {
                        let wk = Double(wd[r * K + k])
                        ref += wk * Double(xt[k])
                        mag += abs(wk * Double(xt[k]))
                        bound += abs(wk) * halfStep[k]
                    }
                    #expect(abs(Double(y[tk * rows + r]) - ref) <= bound * 1.001 + 1e-5 * mag)
                }
            }
        }
    }

    @Test("matmul matches the reference on random-byte blocks (extreme quants)", arguments: quantTypes)
    func randomBytes(_ t: WeightType) {
        var rng = RNG(UInt64(t.id) + 99)
        let K = t.blockSize == 256 ? 4864 : 896, rows = 41, T = 11
        let w = randomBlocks(t, rows: rows, K: K, rng: &rng)
        var x = randomVector(K * T, rng: &rng)
        for i in stride(from: 0, to: x.count, by: 97) { x[i] = 50 } // activation outliers
        for isa in isas {
            let e = worstError(isa: isa, t, w, rows: rows, K: K, x, T: T)
            #expect(e < 2e-6, "\(t.name) isa \(isa): relative error \(e)")
        }
    }

    @Test("AVX2 path and default path agree closely", arguments: allTypes)
    func avx2AgreesWithDefault(_ t: WeightType) {
        guard rk_isa() >= 1 else { return }
        var rng = RNG(UInt64(t.id) + 3)
        let K = t.blockSize == 256 ? 1536 : 576, rows = 29, T = 5
        let w = makeWeights(t, rows: rows, K: K, rng: &rng)
        let x = randomVector(K * T, rng: &rng)
        let a = matmul(isa: 1, t, w, rows: rows, K: K, x, T: T)
        let b = w.withUnsafeBytes { wb in
            var y = [Float](repeating: .nan, count: rows * T)
            rk_matmul(t.id, wb.baseAddress!, Int32(rows), Int32(K), x, Int32(T), &y)
            return y
        }
        let wd = dequantize(t, w, rows: rows, K: K)
        for tk in 0..<T {
            for r in 0..<rows {
                var mag = 0.0
                for k in 0..<K { mag += abs(Double(wd[r * K + k]) * Double(x[tk * K + k])) }
                let tol = t.isFloat ? 1e-6 : 4e-3 // activation blocks may differ (Q6_K: 256 on AVX2, 16 on AVX-512)
                #expect(abs(Double(a[tk * rows + r]) - Double(b[tk * rows + r])) <= tol * mag)
            }
        }
    }

    @Test("results are bit-identical for T=1 and T=7", arguments: allTypes)
    func bitIdenticalAcrossT(_ t: WeightType) {
        var rng = RNG(UInt64(t.id) + 11)
        for K in [shapes(t)[1], shapes(t).last!] {
            let rows = 45, T = 7
            let w = makeWeights(t, rows: rows, K: K, rng: &rng)
            let x = randomVector(K * T, rng: &rng)
            for isa in isas {
                let batch = matmul(isa: isa, t, w, rows: rows, K: K, x, T: T)
                for tk in 0..<T {
                    let one = matmul(isa: isa, t, w, rows: rows, K: K, Array(x[(tk * K)..<((tk + 1) * K)]), T: 1)
                    #expect(one.map(\.bitPattern) == batch[(tk * rows)..<((tk + 1) * rows)].map(\.bitPattern),
                            "\(t.name) K=\(K) isa \(isa) token \(tk)")
                }
            }
        }
    }

    @Test("packed weights give the unpacked results, bit-identical across T and threads", arguments: quantTypes)
    func packed(_ t: WeightType) throws {
        var rng = RNG(UInt64(t.id) + 17)
        let saved = rk_threads_count()
        defer { rk_threads_init(saved) }
        for isa in isas where isa >= 1 {
            // AVX-512 VNNI packs every quantised type; AVX2 all but Q6_K, which its kernel reads as stored.
            let hasForm = isa >= 2 || t.id != Int32(RK_Q6_K)
            #expect((rk_packed_row_size_isa(isa, t.id, Int32(t.blockSize)) > 0) == hasForm, "\(t.name) isa \(isa)")
            guard hasForm else { continue }
            for K in shapes(t) + (t.blockSize == 256 ? [256 * 35] : []) {
                let rows = 37, T = 11
                let w = makeWeights(t, rows: rows, K: K, rng: &rng)
                let x = randomVector(K * T, rng: &rng)
                let rowBytes = rk_packed_row_size_isa(isa, t.id, Int32(K))
                let p = UnsafeMutableRawPointer.allocate(byteCount: rowBytes * rows, alignment: 64)
                defer { p.deallocate() }
                w.withUnsafeBytes { rk_pack_isa(isa, t.id, $0.baseAddress!, Int32(rows), Int32(K), p) }
                func run(_ n: Int, _ x: [Float]) -> [Float] {
                    var y = [Float](repeating: .nan, count: rows * n)
                    rk_matmul_packed_isa(isa, t.id, p, Int32(rows), Int32(K), x, Int32(n), &y)
                    return y
                }
                let plain = matmul(isa: isa, t, w, rows: rows, K: K, x, T: T)
                rk_threads_init(1)
                let batch = run(T, x)
                rk_threads_init(2)
                #expect(run(T, x).map(\.bitPattern) == batch.map(\.bitPattern), "\(t.name) K=\(K) isa \(isa) threads")
                for tk in 0..<T {
                    let one = run(1, Array(x[(tk * K)..<((tk + 1) * K)]))
                    #expect(one.map(\.bitPattern) == batch[(tk * rows)..<((tk + 1) * rows)].map(\.bitPattern),
                            "\(t.name) K=\(K) isa \(isa) token \(tk)")
                }
                // AVX2 reads the unpacked lanes as stored: exact. AVX-512 may sum a row's zero-padded
                // last group in another order.
                if isa == 1 {
                    #expect(batch.map(\.bitPattern) == plain.map(\.bitPattern), "\(t.name) K=\(K) against unpacked")
                } else {
                    let scale = plain.map(abs).max() ?? 1
                    for i in 0..<(rows * T) {
                        #expect(abs(batch[i] - plain[i]) <= 1e-6 * scale, "\(t.name) K=\(K) output \(i)")
                    }
                }
            }
        }
    }

    @Test("several products over one input give exactly what separate calls give", arguments: [1, 3, 9, 64])
    func manyProducts(T: Int) {
        // A Q4_K_M layer's q, k and v: two types, one of them twice (one quantised input shared);
        // with F32 and Q8_0 also a kernel that reads the floats and one with another block format.
        var rng = RNG(UInt64(T) + 23)
        let K = 512, types = [quantTypes[5], quantTypes[7], quantTypes[5], floatTypes[0], quantTypes[4]], rows = [64, 16, 40, 8, 24]
        for set in [[0, 1, 2], [3, 4, 0, 1]] {
            let w = set.map { makeWeights(types[$0], rows: rows[$0], K: K, rng: &rng) }
            let x = randomVector(K * T, rng: &rng)
            let weights = w.map { bytes in UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64) }
            let outputs = set.map { UnsafeMutablePointer<Float>.allocate(capacity: rows[$0] * T) }
            defer { weights.forEach { $0.deallocate() }; outputs.forEach { $0.deallocate() } }
            for (i, bytes) in w.enumerated() { bytes.withUnsafeBytes { weights[i].copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
            var products = set.indices.map { i in
                rk_product(type: types[set[i]].id, W: UnsafeRawPointer(weights[i]), packed: 0, rows: Int32(rows[set[i]]), y: outputs[i])
            }
            rk_matmul_many(&products, Int32(products.count), Int32(K), x, Int32(T))
            let ys = set.indices.map { Array(UnsafeBufferPointer(start: outputs[$0], count: rows[set[$0]] * T)) }
            for (i, t) in set.enumerated() {
                let alone = matmul(isa: rk_isa(), types[t], w[i], rows: rows[t], K: K, x, T: T)
                #expect(ys[i].map(\.bitPattern) == alone.map(\.bitPattern), "\(types[t].name) T=\(T)")
            }
            // The set as a model holds it: packed copies where this CPU has a form for the type,
            // the file's rows elsewhere (a Q4_K_M layer on AVX2: Q4_K packed, Q6_K not).
            let copies: [UnsafeMutableRawPointer?] = set.indices.map { i in
                let rowBytes = rk_packed_row_size(types[set[i]].id, Int32(K))
                guard rowBytes > 0 else { return nil }
                let p = UnsafeMutableRawPointer.allocate(byteCount: rowBytes * rows[set[i]], alignment: 64)
                rk_pack(types[set[i]].id, weights[i], Int32(rows[set[i]]), Int32(K), p)
                return p
            }
            defer { copies.forEach { $0?.deallocate() } }
            guard copies.contains(where: { $0 != nil }) else { continue }
            var mixed = set.indices.map { i in
                rk_product(type: types[set[i]].id, W: UnsafeRawPointer(copies[i] ?? weights[i]), packed: copies[i] == nil ? 0 : 1,
                           rows: Int32(rows[set[i]]), y: outputs[i])
            }
            rk_matmul_many(&mixed, Int32(mixed.count), Int32(K), x, Int32(T))
            for i in set.indices {
                var alone = [Float](repeating: .nan, count: rows[set[i]] * T)
                if let p = copies[i] {
                    rk_matmul_packed(types[set[i]].id, p, Int32(rows[set[i]]), Int32(K), x, Int32(T), &alone)
                } else {
                    alone = matmul(isa: rk_isa(), types[set[i]], w[i], rows: rows[set[i]], K: K, x, T: T)
                }
                #expect(Array(UnsafeBufferPointer(start: outputs[i], count: rows[set[i]] * T)).map(\.bitPattern) == alone.map(\.bitPattern),
                        "\(types[set[i]].name) T=\(T) packed \(copies[i] != nil)")
            }
        }
    }

    @Test("results are bit-identical for 1 and 2 threads", arguments: allTypes)
    func bitIdenticalAcrossThreads(_ t: WeightType) {
        var rng = RNG(UInt64(t.id) + 13)
        let K = shapes(t).last!, rows = 203, T = 19
        let w = makeWeights(t, rows: rows, K: K, rng: &rng)
        let x = randomVector(K * T, rng: &rng)
        let saved = rk_threads_count()
        defer { rk_threads_init(saved) }
        for isa in isas {
            rk_threads_init(1)
            let one = matmul(isa: isa, t, w, rows: rows, K: K, x, T: T)
            rk_threads_init(2)
            let two = matmul(isa: isa, t, w, rows: rows, K: K, x, T: T)
            #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "\(t.name) isa \(isa)")
        }
    }

    @Test("attention matches a naive implementation", arguments: [(9, 3, 64, 37), (14, 2, 64, 5), (12, 2, 128, 70), (4, 4, 80, 9)])
    func attentionMatchesNaive(_ cfg: (Int, Int, Int, Int)) {
        let (nh, nkv, hd, n) = cfg
        var rng = RNG(UInt64(nh * 1000 + hd))
        let kvStride = nkv * hd + 8
        let q = (0..<(n * nh * hd)).map { _ in rng.normal() }
        let k = (0..<(n * kvStride)).map { _ in rng.normal() }
        let v = (0..<(n * kvStride)).map { _ in rng.normal() }
        let scale = 1 / Float(hd).squareRoot()
        // naive, in double
        var ref = [Double](repeating: 0, count: n * nh * hd)
        for t in 0..<n {
            for h in 0..<nh {
                let g = h / (nh / nkv)
                var s = [Double](repeating: 0, count: t + 1)
                for p in 0...t {
                    var d = 0.0
                    for i in 0..<hd { d += Double(q[(t * nh + h) * hd + i]) * Double(k[p * kvStride + g * hd + i]) }
                    s[p] = d * Double(scale)
                }
                let mx = s.max()!
                var sum = 0.0
                for p in 0...t {
                    s[p] = exp(s[p] - mx)
                    sum += s[p]
                }
                for i in 0..<hd {
                    var o = 0.0
                    for p in 0...t { o += s[p] * Double(v[p * kvStride + g * hd + i]) }
                    ref[(t * nh + h) * hd + i] = o / sum
                }
            }
        }
        for isa in isas {
            var out = [Float](repeating: .nan, count: n * nh * hd)
            rk_attention_isa(isa, q, k, v, &out, Int32(n), 0, Int32(nh), Int32(nkv), Int32(hd), Int32(kvStride), scale)
            var worst = 0.0
            for i in 0..<out.count { worst = max(worst, abs(Double(out[i]) - ref[i])) }
            #expect(worst < 1e-5, "isa \(isa): max abs error \(worst)")
        }
    }

    @Test("attention of a query does not depend on T or the thread count")
    func attentionBitIdentical() {
        let nh = 14, nkv = 2, hd = 64, n = 33
        var rng = RNG(5)
        let kvStride = nkv * hd
        let q = (0..<(n * nh * hd)).map { _ in rng.normal() * 2 }
        let k = (0..<(n * kvStride)).map { _ in rng.normal() * 2 }
        let v = (0..<(n * kvStride)).map { _ in rng.normal() }
        let scale: Float = 0.125
        let saved = rk_threads_count()
        defer { rk_threads_init(saved) }
        for isa in isas {
            rk_threads_init(2)
            var all = [Float](repeating: 0, count: n * nh * hd)
            rk_attention_isa(isa, q, k, v, &all, Int32(n), 0, Int32(nh), Int32(nkv), Int32(hd), Int32(kvStride), scale)
            rk_threads_init(1)
            var single = [Float](repeating: 0, count: n * nh * hd)
            q.withUnsafeBufferPointer { qb in
                single.withUnsafeMutableBufferPointer { ob in
                    for t in 0..<n {
                        rk_attention_isa(isa, qb.baseAddress! + t * nh * hd, k, v, ob.baseAddress! + t * nh * hd, 1, Int32(t),
                                         Int32(nh), Int32(nkv), Int32(hd), Int32(kvStride), scale)
                    }
                }
            }
            #expect(all.map(\.bitPattern) == single.map(\.bitPattern), "isa \(isa)")
        }
    }

    @Test("attention of several rows in one job gives each row exactly its own result")
    func attentionRows() {
        var rng = RNG(77)
        let (nh, nkv, hd) = (12, 2, 64), stride = nkv * hd
        let shapes = [(1, 40), (5, 7), (1, 0), (3, 90)]   // (T, pos0) per row
        let q = shapes.map { randomVector($0.0 * nh * hd, rng: &rng) }
        let k = shapes.map { randomVector(($0.0 + $0.1) * stride, rng: &rng) }, v = shapes.map { randomVector(($0.0 + $0.1) * stride, rng: &rng) }
        let outs = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.0 * nh * hd) }
        let qs = q.map { a in UnsafeMutablePointer<Float>.allocate(capacity: a.count) }, ks = k.map { a in UnsafeMutablePointer<Float>.allocate(capacity: a.count) }
        let vs = v.map { a in UnsafeMutablePointer<Float>.allocate(capacity: a.count) }
        defer { (outs + qs + ks + vs).forEach { $0.deallocate() } }
        for i in shapes.indices {
            qs[i].update(from: q[i], count: q[i].count); ks[i].update(from: k[i], count: k[i].count); vs[i].update(from: v[i], count: v[i].count)
        }
        var rows = shapes.indices.map { i in rk_attention_row(q: qs[i], k: ks[i], v: vs[i], out: outs[i], T: Int32(shapes[i].0), pos0: Int32(shapes[i].1)) }
        rk_attention_rows(&rows, Int32(rows.count), Int32(nh), Int32(nkv), Int32(hd), Int32(stride), 0.125)
        for (i, (T, pos0)) in shapes.enumerated() {
            var alone = [Float](repeating: .nan, count: T * nh * hd)
            rk_attention(q[i], k[i], v[i], &alone, Int32(T), Int32(pos0), Int32(nh), Int32(nkv), Int32(hd), Int32(stride), 0.125)
            #expect(Array(UnsafeBufferPointer(start: outs[i], count: T * nh * hd)).map(\.bitPattern) == alone.map(\.bitPattern), "row \(i)")
        }
    }

    @Test("thread pool runs the job once on every thread, and nested jobs inline")
    func threadPool() {
        let saved = rk_threads_count()
        defer { rk_threads_init(saved) }
        for n: Int32 in [1, 2, 3, 2] {
            rk_threads_init(n)
            #expect(rk_threads_count() == n)
            var hits = [Int32](repeating: 0, count: 8)
            for _ in 0..<100 {
                hits.withUnsafeMutableBufferPointer { hb in
                    rk_parallel({ ctx, ith, nth in
                        let h = ctx!.assumingMemoryBound(to: Int32.self)
                        h[Int(ith)] += 1
                        // a nested job runs inline, as thread 0 of 1 (slots 4... count those)
                        rk_parallel({ ctx2, ith2, nth2 in
                            if ith2 == 0 && nth2 == 1 { ctx2!.assumingMemoryBound(to: Int32.self).pointee += 1 }
                        }, UnsafeMutableRawPointer(h + 4 + Int(ith)))
                        _ = nth
                    }, hb.baseAddress!)
                }
            }
            #expect(Array(hits[0..<Int(n)]) == [Int32](repeating: 100, count: Int(n)))
            #expect(Array(hits[4..<(4 + Int(n))]) == [Int32](repeating: 100, count: Int(n)))
        }
    }

    @Test("matmul called from inside a pool job matches the normal call")
    func nestedMatmul() {
        struct Job {
            var w: UnsafeRawPointer
            var x: UnsafePointer<Float>
            var y: UnsafeMutablePointer<Float>
            var type: Int32, rows: Int, K: Int, rowBytes: Int
        }
        let saved = rk_threads_count()
        defer { rk_threads_init(saved) }
        rk_threads_init(2)
        var rng = RNG(17)
        for t in [quantTypes[1], quantTypes[5], floatTypes[1]] {
            let K = t.blockSize == 256 ? 1536 : 576, rows = 301
            let w = makeWeights(t, rows: rows, K: K, rng: &rng)
            let x = randomVector(K, rng: &rng)
            let whole = matmul(isa: rk_isa(), t, w, rows: rows, K: K, x, T: 1)
            var sliced = [Float](repeating: .nan, count: rows)
            w.withUnsafeBytes { wb in
                x.withUnsafeBufferPointer { xb in
                    sliced.withUnsafeMutableBufferPointer { yb in
                        var job = Job(w: wb.baseAddress!, x: xb.baseAddress!, y: yb.baseAddress!, type: t.id, rows: rows, K: K,
                                      rowBytes: rk_row_size(t.id, Int64(K)))
                        rk_parallel({ ctx, ith, nth in // each thread multiplies its own rows, single-threaded
                            let j = ctx!.assumingMemoryBound(to: Job.self).pointee
                            let r0 = j.rows * Int(ith) / Int(nth), r1 = j.rows * Int(ith + 1) / Int(nth)
                            rk_matmul(j.type, j.w + r0 * j.rowBytes, Int32(r1 - r0), Int32(j.K), j.x, 1, j.y + r0)
                        }, &job)
                    }
                }
            }
            #expect(whole.map(\.bitPattern) == sliced.map(\.bitPattern), "\(t.name)")
        }
    }

    @Test("reports the instruction set in use")
    func isaNames() {
        let name = String(cString: rk_isa_name())
        #expect(["AVX-512 VNNI", "AVX2", "scalar"].contains(name))
        #expect(rk_isa() >= 0 && rk_isa() <= 2)
    }
}
