import Crypto
import Foundation
import GGUF

/// What a model is, whatever its file is called: shipped cue files and call heads record the
/// identities of the models they were made with and are found by them, not by file name.
///
/// Two levels of sameness: the same base (architecture, sizes and vocabulary: another
/// quantisation of the same model, but also a fine-tune of it, which these cannot tell apart) and
/// the same weights (also the same file type and the same bytes in a fixed sample of tensor data).
public struct ModelIdentity: Codable, Sendable, Equatable {
    /// GGUF's `general.name`, for messages only: never compared.
    public var name: String
    public var architecture: String
    public var layers: Int
    public var dim: Int
    public var ffnDim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    /// SHA-256 of the token strings in id order, each after its UTF-8 length (4 bytes, little-endian).
    public var vocabulary: String
    /// The quantisation: `general.file_type` by llama.cpp's name (Q4_K_M), else the tensor types.
    public var fileType: String
    /// SHA-256 of fixed slices of a few tensors (`sampledTensors`), with their names, types and shapes.
    public var sample: String

    /// How alike two models are.
    public enum Likeness: Int, Comparable, Sendable {
        /// Another architecture, size or vocabulary.
        case other
        /// Architecture, sizes and vocabulary agree; the quantisation or the weights do not.
        case sameBase
        /// The same weights, whatever the files are called.
        case same
        public static func < (a: Likeness, b: Likeness) -> Bool { a.rawValue < b.rawValue }
    }

    public func likeness(to other: ModelIdentity) -> Likeness {
        guard architecture == other.architecture, layers == other.layers, dim == other.dim, ffnDim == other.ffnDim,
              heads == other.heads, kvHeads == other.kvHeads, headDim == other.headDim, vocabSize == other.vocabSize,
              vocabulary == other.vocabulary else { return .other }
        return fileType == other.fileType && sample == other.sample ? .same : .sameBase
    }

    /// One line for messages: name, architecture, sizes, vocabulary and quantisation.
    public var summary: String {
        "\(name) (\(architecture), \(layers) layers of \(dim), vocabulary \(vocabSize) #\(vocabulary.prefix(8)), \(fileType))"
    }

    /// Name and quantisation, for lists.
    public var label: String { "\(name) (\(fileType))" }

    /// What sets `self` apart from `other`, in words (empty when they are the same weights).
    public func differences(from other: ModelIdentity) -> [String] {
        var out: [String] = []
        if architecture != other.architecture { out.append("architecture \(architecture), not \(other.architecture)") }
        for (what, a, b) in [("layers", layers, other.layers), ("dim", dim, other.dim), ("ffn dim", ffnDim, other.ffnDim),
                             ("heads", heads, other.heads), ("kv heads", kvHeads, other.kvHeads), ("head dim", headDim, other.headDim),
                             ("vocabulary size", vocabSize, other.vocabSize)] where a != b {
            out.append("\(what) \(a), not \(b)")
        }
        if vocabSize == other.vocabSize, vocabulary != other.vocabulary { out.append("other token strings") }
        if out.isEmpty {
            if fileType != other.fileType { out.append("quantisation \(fileType), not \(other.fileType)") }
            if sample != other.sample { out.append("other weights") }
        }
        return out
    }

    /// The identity of a loaded model, computed once per file (and so cheap to ask again).
    public static func of(_ model: Model) -> ModelIdentity {
        cache.identity(of: model.file) { ModelIdentity(file: model.file, config: model.config, tokens: model.tokenizer.tokens) }
    }

    /// The identity of a GGUF file (`tokens`: the vocabulary, as the tokenizer read it).
    public init(file: GGUFFile, config: ModelConfig, tokens: [String]) {
        name = config.name
        architecture = config.architecture
        layers = config.layers
        dim = config.dim
        ffnDim = config.ffnDim
        heads = config.heads
        kvHeads = config.kvHeads
        headDim = config.headDim
        vocabSize = config.vocabSize

        // One buffer, one hash: a hash call per token would cost more than the hashing. Bytes are
        // copied whole (a byte-wise append was most of the cost).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tokens.count * 12)
        for var t in tokens {
            let n = t.utf8.count
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: n >> shift)) }
            t.withUTF8 { bytes.append(contentsOf: $0) }
        }
        vocabulary = Self.digest(bytes)

        if let code = file.metadata[GGUFKey.fileType]?.int {
            fileType = Self.fileTypeNames[code] ?? "file type \(code)"
        } else {
            fileType = Set(file.tensors.values.map { "\($0.type)" }).sorted().joined(separator: "+")
        }

        // A few KB from the start, middle and end of a few tensors: a handful of pages of the
        // mapping, so it stays cheap on a file of any size while any requantisation changes it.
        var sampled: [UInt8] = []
        for name in Self.sampledTensors(layers: config.layers) {
            guard let t = file.tensors[name] else { continue }
            sampled += Array(name.utf8)
            for v in [Int(t.type.rawValue)] + t.dims + [t.byteCount] { withUnsafeBytes(of: Int64(v).littleEndian) { sampled += $0 } }
            let n = min(Self.sliceBytes, t.byteCount)
            for start in Set([0, (t.byteCount - n) / 2, t.byteCount - n]).sorted() {
                sampled += UnsafeRawBufferPointer(start: t.data + start, count: n)
            }
        }
        sample = Self.digest(sampled)
    }

    /// Bytes of each slice of `sampledTensors`.
    static let sliceBytes = 4096

    /// The tensors whose data is sampled: the embedding, the first, a middle and the last layer.
    static func sampledTensors(layers: Int) -> [String] {
        ["token_embd.weight", "blk.0.attn_q.weight", "blk.\(layers / 2).ffn_down.weight",
         "blk.\(layers - 1).attn_output.weight", "output_norm.weight"]
    }

    /// SHA-256 in lower-case hex.
    public static func digest<D: DataProtocol>(_ data: D) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// llama.cpp's `llama_ftype` values by name (the common ones).
    static let fileTypeNames: [Int: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M",
        13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
    ]

    private static let cache = Cache()

    /// Identities by file, kept while the file is open (a server builds modes for every request).
    final class Cache: @unchecked Sendable {
        struct Entry { weak var file: GGUFFile?; let identity: ModelIdentity }
        let lock = NSLock()
        var entries: [ObjectIdentifier: Entry] = [:]

        func identity(of file: GGUFFile, compute: () -> ModelIdentity) -> ModelIdentity {
            let key = ObjectIdentifier(file)
            lock.lock()
            if let e = entries[key], e.file === file { lock.unlock(); return e.identity }
            lock.unlock()
            let identity = compute()
            lock.lock()
            entries = entries.filter { $0.value.file != nil }
            entries[key] = Entry(file: file, identity: identity)
            lock.unlock()
            return identity
        }
    }
}
