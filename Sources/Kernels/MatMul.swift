import CKernels
import Foundation
import GGUF

/// A weight matrix of the mapped GGUF file: rows x K elements of its quantised type. Products read
/// a packed copy where the CPU has one (see rk_pack); row lookups always read the file.
public struct WeightMatrix: @unchecked Sendable {
    public let tensor: GGUFTensor
    let packed: PackedWeights?
    public var rows: Int { tensor.rowCount }
    public var columns: Int { tensor.rowLength }
    /// Bytes a product over every row reads: the packed copy where there is one.
    public var bytes: Int { packed?.bytes ?? tensor.byteCount }

    /// `pack: false` for matrices only looked up by row (an untied embedding).
    public init(_ tensor: GGUFTensor, pack: Bool = true) throws {
        guard rk_type_supported(Int32(tensor.type.rawValue)) != 0 else {
            throw KernelError.unsupportedType(tensor: tensor.name, type: tensor.type)
        }
        // The C kernels take 32-bit row and column counts.
        guard tensor.rowCount <= Int(Int32.max), tensor.rowLength <= Int(Int32.max) else {
            throw KernelError.tooLarge(tensor: tensor.name, dims: tensor.dims)
        }
        self.tensor = tensor
        packed = pack ? PackedWeights(tensor) : nil
    }

    /// y[t][r] = W[r] · x[t] for T input rows of `columns` floats, over the first `rows` rows
    /// (all by default; y then has that many columns).
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, count T: Int, into y: UnsafeMutablePointer<Float>, rows n: Int? = nil) {
        let type = Int32(tensor.type.rawValue), n = Int32(min(n ?? rows, rows))
        if let packed {
            rk_matmul_packed(type, packed.data, n, Int32(columns), x, Int32(T), y)
        } else {
            rk_matmul(type, tensor.data, n, Int32(columns), x, Int32(T), y)
        }
    }

    /// Several products over one input (a layer's q, k and v; its gate and up) as one job on the
    /// threads, the input quantised once: exactly the outputs of separate `apply` calls.
    @inline(__always)
    public static func apply(_ products: [(WeightMatrix, into: UnsafeMutablePointer<Float>)], _ x: UnsafePointer<Float>, count T: Int) {
        withUnsafeTemporaryAllocation(of: rk_product.self, capacity: products.count) { p in
            for (i, (m, y)) in products.enumerated() {
                p[i] = rk_product(type: Int32(m.tensor.type.rawValue), W: m.packed.map { UnsafeRawPointer($0.data) } ?? m.tensor.data,
                                  packed: m.packed == nil ? 0 : 1, rows: Int32(m.rows), y: y)
            }
            rk_matmul_many(p.baseAddress!, Int32(products.count), Int32(products[0].0.columns), x, Int32(T))
        }
    }

    /// Dequantises row `r` (an embedding lookup).
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        rk_dequantize_row(Int32(tensor.type.rawValue), tensor.data + r * tensor.rowBytes, dst, Int64(columns))
    }
}

/// A matrix copied once into the layout the kernels read directly, so that products over a few
/// tokens skip the per-call unpacking. nil where the CPU or type has none (rk_packed_row_size).
final class PackedWeights: @unchecked Sendable {
    let data: UnsafeMutableRawPointer
    let bytes: Int

    init?(_ t: GGUFTensor) {
        let type = Int32(t.type.rawValue)
        let rowBytes = rk_packed_row_size(type, Int32(t.rowLength))
        guard rowBytes > 0 else { return nil }
        bytes = rowBytes * t.rowCount
        data = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        rk_pack(type, t.data, Int32(t.rowCount), Int32(t.rowLength), data)
        // Products no longer read the file's copy: drop its pages from this process (they stay
        // in the page cache, and row lookups fault them back in).
        let page = Int(getpagesize())
        let start = (Int(bitPattern: t.data) + page - 1) & ~(page - 1)
        let end = (Int(bitPattern: t.data) + t.byteCount) & ~(page - 1)
        if end > start { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
    }

    deinit { data.deallocate() }
}

public enum KernelError: Error, CustomStringConvertible {
    case unsupportedType(tensor: String, type: GGMLType)
    case tooLarge(tensor: String, dims: [Int])
    public var description: String {
        switch self {
        case .tooLarge(let t, let d): return "tensor \(t) of shape \(d) has more rows or columns than the kernels address (2^31 - 1)"
        case .unsupportedType(let t, let ty): return "tensor \(t) has type \(ty), which Relay's kernels do not support"
        }
    }
}

/// Threads used by every kernel.
public enum Threads {
    public static func configure(_ n: Int) { rk_threads_init(Int32(max(1, n))) }
    public static var count: Int { Int(rk_threads_count()) }
    public static var isa: String { String(cString: rk_isa_name()) }
    /// This machine's read bandwidth on these threads, in bytes per second: the best of
    /// `repetitions` streaming reads of a buffer of `bytes` (larger than the caches).
    public static func readBandwidth(bytes: Int = 1 << 30, repetitions: Int = 5) -> Double {
        rk_read_bandwidth(bytes, Int32(repetitions))
    }
}

/// One row of `attention(rows:)`: its queries and output (count positions) and its layer's cache,
/// which holds start + count positions.
public struct AttentionRow {
    let row: rk_attention_row
    public init(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int, start: Int) {
        row = rk_attention_row(q: q, k: k, v: v, out: out, T: Int32(count), pos0: Int32(start))
    }
}

/// Causal attention of several rows of one forward, each over its own cache, as one job on the
/// threads; each row's output is exactly what `attention` gives it alone.
@inline(__always)
public func attention(rows: [AttentionRow], heads: Int, kvHeads: Int, headDim: Int, kvStride: Int, scale: Float) {
    let raw = rows.map(\.row)
    raw.withUnsafeBufferPointer {
        rk_attention_rows($0.baseAddress, Int32($0.count), Int32(heads), Int32(kvHeads), Int32(headDim), Int32(kvStride), scale)
    }
}
