import Foundation

/// Writes GGUF images byte by byte, so tests can craft files a converter never would: wrong
/// counts, huge dimensions, overlapping or unaligned tensor data.
public struct GGUFBuilder {
    public enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String)
        case strings([String]), i32s([Int32])
        /// An array header with any item type and count, and the raw bytes that follow it.
        case rawArray(itemType: UInt32, count: UInt64, bytes: [UInt8])
    }
    public struct Tensor {
        public var name: String, dims: [UInt64], type: UInt32, offset: UInt64
        public init(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64) {
            (self.name, self.dims, self.type, self.offset) = (name, dims, type, offset)
        }
    }

    public var version: UInt32 = 3
    public var keys: [(String, Value)] = []
    public var tensors: [Tensor] = []
    /// Bytes after the aligned start of the data section.
    public var data: [UInt8] = []
    /// Overrides the counts written in the header.
    public var tensorCount: UInt64?, keyCount: UInt64?

    public init() {}

    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(0x4655_4747)
        u32(version)
        u64(tensorCount ?? UInt64(tensors.count))
        u64(keyCount ?? UInt64(keys.count))
        for (key, value) in keys {
            str(key)
            switch value {
            case .u32(let v): u32(4); u32(v)
            case .i32(let v): u32(5); u32(UInt32(bitPattern: v))
            case .f32(let v): u32(6); u32(v.bitPattern)
            case .bool(let v): u32(7); out.append(v ? 1 : 0)
            case .string(let s): u32(8); str(s)
            case .strings(let a): u32(9); u32(8); u64(UInt64(a.count)); a.forEach(str)
            case .i32s(let a): u32(9); u32(5); u64(UInt64(a.count)); a.forEach { u32(UInt32(bitPattern: $0)) }
            case .rawArray(let type, let count, let raw): u32(9); u32(type); u64(count); out += raw
            }
        }
        for t in tensors {
            str(t.name)
            u32(UInt32(t.dims.count))
            t.dims.forEach(u64)
            u32(t.type)
            u64(t.offset)
        }
        while out.count % 32 != 0 { out.append(0) }
        return out + data
    }

    /// A complete one-layer llama model with F32 weights and a three-token vocabulary (plus
    /// `extraTokens`), small enough to build in a test: the base for files broken one field at a time.
    public static func tinyLlama(dim: Int = 32, ffn: Int = 64, vocab: Int = 4, heads: Int = 2, extraTokens: Int = 0) -> GGUFBuilder {
        var b = GGUFBuilder()
        let tokens = ["a", "b", "c", "<|endoftext|>"].prefix(vocab) + (0..<max(0, vocab - 4)).map { "t\($0)" }
        b.keys = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .u32(1)),
            ("llama.embedding_length", .u32(UInt32(dim))),
            ("llama.feed_forward_length", .u32(UInt32(ffn))),
            ("llama.attention.head_count", .u32(UInt32(heads))),
            ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)),
            ("llama.context_length", .u32(128)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.tokens", .strings(Array(tokens) + (0..<extraTokens).map { "x\($0)" })),
            ("tokenizer.ggml.merges", .strings([])),
        ]
        var offset: UInt64 = 0
        func add(_ name: String, _ dims: [Int]) {
            b.tensors.append(Tensor(name, dims: dims.map(UInt64.init), offset: offset))
            let bytes = dims.reduce(1, *) * 4
            var s = 0
            var state: UInt32 = 12345 &+ UInt32(b.tensors.count)
            while s < bytes / 4 {
                state = state &* 1_664_525 &+ 1_013_904_223
                let f = (Float(state >> 8) / Float(1 << 24) - 0.5) * 0.2
                withUnsafeBytes(of: f.bitPattern.littleEndian) { b.data += $0 }
                s += 1
            }
            offset += UInt64(bytes)
            while offset % 32 != 0 { offset += 1; b.data.append(0) }
        }
        add("token_embd.weight", [dim, vocab])
        add("output_norm.weight", [dim])
        add("blk.0.attn_norm.weight", [dim])
        add("blk.0.attn_q.weight", [dim, dim])
        add("blk.0.attn_k.weight", [dim, dim])
        add("blk.0.attn_v.weight", [dim, dim])
        add("blk.0.attn_output.weight", [dim, dim])
        add("blk.0.ffn_norm.weight", [dim])
        add("blk.0.ffn_gate.weight", [dim, ffn])
        add("blk.0.ffn_up.weight", [dim, ffn])
        add("blk.0.ffn_down.weight", [ffn, dim])
        return b
    }

    public mutating func set(_ key: String, _ value: Value) {
        if let i = keys.firstIndex(where: { $0.0 == key }) { keys[i].1 = value } else { keys.append((key, value)) }
    }
}
