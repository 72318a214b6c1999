/// A metadata value. Integers of every width are widened to `Int`, floats to `Double`.
public enum GGUFValue: Sendable, Equatable {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var float: Float? {
        switch self {
        case .float(let d): return Float(d)
        case .int(let i): return Float(i)
        default: return nil
        }
    }
    public var bool: Bool? {
        switch self {
        case .bool(let b): return b
        case .int(let i): return i != 0
        default: return nil
        }
    }
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// Metadata keys. `{arch}` is replaced by `general.architecture`.
public enum GGUFKey {
    public static let architecture = "general.architecture"
    public static let name = "general.name"
    public static let sizeLabel = "general.size_label"
    /// llama.cpp's `llama_ftype`: the quantisation the file was made with.
    public static let fileType = "general.file_type"
    public static let alignment = "general.alignment"

    public static func arch(_ arch: String, _ suffix: String) -> String { "\(arch).\(suffix)" }
    public static let blockCount = "block_count"
    public static let contextLength = "context_length"
    public static let embeddingLength = "embedding_length"
    public static let feedForwardLength = "feed_forward_length"
    public static let headCount = "attention.head_count"
    public static let headCountKV = "attention.head_count_kv"
    public static let keyLength = "attention.key_length"
    public static let valueLength = "attention.value_length"
    public static let rmsEpsilon = "attention.layer_norm_rms_epsilon"
    public static let ropeBase = "rope.freq_base"
    public static let ropeDimensions = "rope.dimension_count"
    public static let ropeScalingType = "rope.scaling.type"
    public static let ropeScalingFactor = "rope.scaling.factor"
    public static let ropeScalingOrigContext = "rope.scaling.original_context_length"
    public static let vocabSize = "vocab_size"

    public enum Tokenizer {
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let merges = "tokenizer.ggml.merges"
        public static let bosID = "tokenizer.ggml.bos_token_id"
        public static let eosID = "tokenizer.ggml.eos_token_id"
        public static let eotID = "tokenizer.ggml.eot_token_id"
        public static let eomID = "tokenizer.ggml.eom_token_id"
        public static let padID = "tokenizer.ggml.padding_token_id"
        public static let addBOS = "tokenizer.ggml.add_bos_token"
        public static let addEOS = "tokenizer.ggml.add_eos_token"
        public static let chatTemplate = "tokenizer.chat_template"
    }
}

/// Tensor element types, with the block layout of each in one table.
public enum GGMLType: UInt32, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    /// (elements per block, bytes per block)
    var layout: (Int, Int) {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        case .q5_0: return (32, 22)
        case .q5_1: return (32, 24)
        case .q8_0: return (32, 34)
        case .q8_1: return (32, 36)
        case .q2_K: return (256, 84)
        case .q3_K: return (256, 110)
        case .q4_K: return (256, 144)
        case .q5_K: return (256, 176)
        case .q6_K: return (256, 210)
        case .q8_K: return (256, 292)
        case .iq2_xxs: return (256, 66)
        case .iq2_xs: return (256, 74)
        case .iq3_xxs: return (256, 98)
        case .iq1_s: return (256, 50)
        case .iq4_nl: return (32, 18)
        case .iq3_s: return (256, 110)
        case .iq2_s: return (256, 82)
        case .iq4_xs: return (256, 136)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        case .iq1_m: return (256, 56)
        case .tq1_0: return (256, 54)
        case .tq2_0: return (256, 66)
        case .mxfp4: return (32, 17)
        }
    }
    public var blockSize: Int { layout.0 }
    public var blockBytes: Int { layout.1 }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        default: return "type \(rawValue)"
        }
    }
}

public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badMagic(path: String, found: UInt32)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, what: String, offset: Int)
    case corrupt(path: String, what: String)
    case missingKey(path: String, key: String)
    case wrongType(path: String, key: String, expected: String)
    case missingTensor(path: String, name: String)
    case unsupportedTensorType(path: String, tensor: String, type: UInt32)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let why): return "cannot open \(p): \(why)"
        case .badMagic(let p, let m):
            return "\(p) is not a GGUF file (magic 0x\(String(m, radix: 16)), expected 0x46554747 \"GGUF\")"
        case .unsupportedVersion(let p, let v): return "\(p): unsupported GGUF version \(v) (2 and 3 are supported)"
        case .truncated(let p, let what, let off): return "\(p) is truncated: \(what) runs past the end of the file (offset \(off))"
        case .corrupt(let p, let what): return "\(p) is corrupt: \(what)"
        case .missingKey(let p, let k): return "\(p): metadata key \(k) is missing"
        case .wrongType(let p, let k, let e): return "\(p): metadata key \(k) is not a \(e)"
        case .missingTensor(let p, let n): return "\(p): tensor \(n) is missing"
        case .unsupportedTensorType(let p, let t, let ty): return "\(p): tensor \(t) has unknown type id \(ty)"
        }
    }
}
