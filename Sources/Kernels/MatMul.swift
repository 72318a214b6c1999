import CKernels
import GGUF

/// A weight matrix in the mapped GGUF file, used in place: rows x K elements of its quantised type.
public struct WeightMatrix: @unchecked Sendable {
    public let tensor: GGUFTensor
    public var rows: Int { tensor.rowCount }
    public var columns: Int { tensor.rowLength }

    public init(_ tensor: GGUFTensor) throws {
        guard rk_type_supported(Int32(tensor.type.rawValue)) != 0 else {
            throw KernelError.unsupportedType(tensor: tensor.name, type: tensor.type)
        }
        self.tensor = tensor
    }

    /// y[t][r] = W[r] · x[t] for T input rows of `columns` floats.
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, count T: Int, into y: UnsafeMutablePointer<Float>) {
        rk_matmul(Int32(tensor.type.rawValue), tensor.data, Int32(rows), Int32(columns), x, Int32(T), y)
    }

    /// Dequantises row `r` (an embedding lookup).
    public func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        rk_dequantize_row(Int32(tensor.type.rawValue), tensor.data + r * tensor.rowBytes, dst, Int64(columns))
    }
}

public enum KernelError: Error, CustomStringConvertible {
    case unsupportedType(tensor: String, type: GGMLType)
    public var description: String {
        switch self {
        case .unsupportedType(let t, let ty): return "tensor \(t) has type \(ty), which Relay's kernels do not support"
        }
    }
}

/// Threads used by every kernel.
public enum Threads {
    public static func configure(_ n: Int) { rk_threads_init(Int32(max(1, n))) }
    public static var count: Int { Int(rk_threads_count()) }
    public static var isa: String { String(cString: rk_isa_name()) }
}

/// Causal grouped-query attention over a layer's cache (see rk_attention).
@inline(__always)
public func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                      out: UnsafeMutablePointer<Float>, count T: Int, start pos0: Int,
                      heads: Int, kvHeads: Int, headDim: Int, kvStride: Int, scale: Float) {
    rk_attention(q, k, v, out, Int32(T), Int32(pos0), Int32(heads), Int32(kvHeads), Int32(headDim), Int32(kvStride), scale)
}
