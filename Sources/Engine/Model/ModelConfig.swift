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
        architecture = arch
        name = gguf.metadata[GGUFKey.name]?.string ?? arch
        layers = try gguf.int(key(GGUFKey.blockCount))
        dim = try gguf.int(key(GGUFKey.embeddingLength))
        ffnDim = try gguf.int(key(GGUFKey.feedForwardLength))
        heads = try gguf.int(key(GGUFKey.headCount))
        kvHeads = gguf.metadata[key(GGUFKey.headCountKV)]?.int ?? heads
        headDim = gguf.metadata[key(GGUFKey.keyLength)]?.int ?? (heads > 0 ? dim / heads : 0)
        trainedContext = gguf.metadata[key(GGUFKey.contextLength)]?.int ?? 4096
        rmsEps = try gguf.float(key(GGUFKey.rmsEpsilon))
        ropeBase = gguf.metadata[key(GGUFKey.ropeBase)]?.float ?? 10000
        ropeDims = gguf.metadata[key(GGUFKey.ropeDimensions)]?.int ?? headDim
        ropeNeox = arch != "llama"
        ropePositionScale = 1
        if gguf.metadata[key(GGUFKey.ropeScalingType)]?.string == "linear", let f = gguf.metadata[key(GGUFKey.ropeScalingFactor)]?.float, f > 0 {
            ropePositionScale = 1 / f
        }
        let embd = try gguf.tensor("token_embd.weight")
        vocabSize = gguf.metadata[key(GGUFKey.vocabSize)]?.int ?? embd.rowCount

        let valid = layers > 0 && dim > 0 && heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && headDim > 0
            && ropeDims > 0 && ropeDims <= headDim && ropeDims % 2 == 0 && ffnDim > 0 && rmsEps > 0
        guard valid else {
            throw ModelError.badConfig(path: gguf.path, detail: "layers \(layers), dim \(dim), heads \(heads)/\(kvHeads), head dim \(headDim), rope dims \(ropeDims)")
        }
    }
}

public enum ModelError: Error, CustomStringConvertible {
    case unsupportedArchitecture(path: String, arch: String)
    case badConfig(path: String, detail: String)
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])
    case contextOverflow(needed: Int, contextSize: Int)
    case emptyInput

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let p, let a):
            return "\(p): architecture '\(a)' is not supported (supported: \(ModelConfig.supportedArchitectures.joined(separator: ", ")))"
        case .badConfig(let p, let d): return "\(p): inconsistent model hyper-parameters: \(d)"
        case .shapeMismatch(let p, let t, let e, let f): return "\(p): tensor \(t) has shape \(f), expected \(e)"
        case .contextOverflow(let n, let c):
            return "the input needs \(n) positions but the context holds \(c) (raise -c/--ctx-size or shorten the prompt)"
        case .emptyInput: return "nothing to evaluate: the prompt is empty"
        }
    }
}
