import GGUF

/// Architecture hyper-parameters, filled from GGUF metadata. Architectures are data: the few
/// ways the supported families differ are flags here, read by the one forward pass.
public struct ModelConfig: Sendable, Equatable {
    public static let supportedArchitectures = ["llama", "qwen2", "qwen3"]

    public var architecture: String
    public var name: String
    public var layers: Int
    public var dim: Int
    public var ffnDim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var trainedContext: Int
    public var rmsEps: Float
    public var ropeBase: Float
    public var ropeDims: Int
    /// GPT-NeoX pairing (i, i + d/2) rather than LLaMA's adjacent pairs.
    public var ropeNeox: Bool
    /// Positions are multiplied by this (linear RoPE scaling is 1 / factor).
    public var ropePositionScale: Float

    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string(GGUFKey.architecture)
        guard Self.supportedArchitectures.contains(arch) else { throw ModelError.unsupportedArchitecture(path: gguf.path, arch: arch) }
        func key(_ s: String) -> String { GGUFKey.arch(arch, s) }
        // Each size is bounded on its own, so products of them (q width, cache rows) cannot overflow;
        // the tensors' shapes are then checked against them when the weights are bound.
        func size(_ suffix: String, default value: Int? = nil, in range: ClosedRange<Int> = 1...(1 << 20)) throws -> Int {
            let k = key(suffix)
            let v = try value.map { gguf.metadata[k] == nil ? $0 : try gguf.int(k) } ?? gguf.int(k)
            guard range.contains(v) else { throw ModelError.badConfig(path: gguf.path, detail: "\(k) is \(v), outside \(range)") }
            return v
        }
        func number(_ suffix: String, default value: Float? = nil) throws -> Float {
            let k = key(suffix)
            let v = try value.map { gguf.metadata[k] == nil ? $0 : try gguf.float(k) } ?? gguf.float(k)
            guard v.isFinite, v > 0 else { throw ModelError.badConfig(path: gguf.path, detail: "\(k) is \(v), not a positive number") }
            return v
        }
        architecture = arch
        name = gguf.metadata[GGUFKey.name]?.string ?? arch
        layers = try size(GGUFKey.blockCount, in: 1...4096)
        dim = try size(GGUFKey.embeddingLength)
        ffnDim = try size(GGUFKey.feedForwardLength)
        heads = try size(GGUFKey.headCount, in: 1...4096)
        kvHeads = try size(GGUFKey.headCountKV, default: heads, in: 1...heads)
        headDim = try size(GGUFKey.keyLength, default: max(dim / heads, 1), in: 1...4096)
        trainedContext = try size(GGUFKey.contextLength, default: 4096, in: 1...(1 << 30))
        rmsEps = try number(GGUFKey.rmsEpsilon)
        ropeBase = try number(GGUFKey.ropeBase, default: 10000)
        ropeDims = try size(GGUFKey.ropeDimensions, default: headDim, in: 1...headDim)
        ropeNeox = arch != "llama"
        ropePositionScale = 1
        if gguf.metadata[key(GGUFKey.ropeScalingType)]?.string == "linear", let f = gguf.metadata[key(GGUFKey.ropeScalingFactor)]?.float, f.isFinite, f > 0 {
            ropePositionScale = 1 / f
        }
        let embd = try gguf.tensor("token_embd.weight")
        vocabSize = try size(GGUFKey.vocabSize, default: embd.rowCount, in: 1...(Int(Int32.max) / 2))
        guard heads % kvHeads == 0, ropeDims % 2 == 0 else {
            throw ModelError.badConfig(path: gguf.path, detail: "\(heads) heads over \(kvHeads) KV heads, rope dims \(ropeDims): heads must be a multiple of KV heads and rope dims even")
        }
    }

    /// Bytes of keys and values one position takes in every layer.
    public var kvBytesPerPosition: Int { 2 * layers * kvHeads * headDim * MemoryLayout<Float>.size }
}

public enum ModelError: Error, CustomStringConvertible {
    case unsupportedArchitecture(path: String, arch: String)
    case badConfig(path: String, detail: String)
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    case contextOverflow(needed: Int, contextSize: Int)
    case emptyInput
    /// A size from flags or a file that cannot be met.
    case badSize(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let p, let a):
            return "\(p): architecture '\(a)' is not supported (supported: \(ModelConfig.supportedArchitectures.joined(separator: ", ")))"
        case .badConfig(let p, let d): return "\(p): inconsistent model hyper-parameters: \(d)"
        case .shapeMismatch(let p, let t, let e, let f): return "\(p): tensor \(t) has shape \(f), expected \(e)"
        case .contextOverflow(let n, let c):
            return "the input needs \(n) positions but the context holds \(c) (raise -c/--ctx-size or shorten the prompt)"
        case .emptyInput: return "nothing to evaluate: the prompt is empty"
        case .badSize(let d): return d
        }
    }
}
