import Engine
import Foundation
import GGUF
import Testing
import TestSupport

/// Metadata that disagrees with the tensors, or sizes that cannot be met: one clear error naming
/// the key or tensor, before anything sized by it is allocated.
@Suite("Model loading: hostile metadata and sizes")
struct HostileModelTests {
    func load(_ b: GGUFBuilder) throws -> Model {
        let bytes = b.bytes()
        return try Model(file: bytes.withUnsafeBytes { try GGUFFile(bytes: $0, name: "crafted.gguf") })
    }

    func error(_ b: GGUFBuilder) -> String {
        do { _ = try load(b); return "no error" } catch { return "\(error)" }
    }

    @Test("the built tiny model loads and runs a forward")
    func tinyRuns() throws {
        let m = try load(.tinyLlama())
        let logits = try m.forward([1, 2, 3], cache: m.makeCache(capacity: 8))
        #expect(logits.count == 4 && logits.allSatisfy(\.isFinite))
    }

    @Test("sizes out of range name their key", arguments: [
        ("llama.block_count", GGUFBuilder.Value.u32(0)),
        ("llama.attention.head_count", .u32(0)),
        ("llama.attention.head_count", .u32(1 << 31)),
        ("llama.embedding_length", .u32(UInt32.max)),
        ("llama.attention.head_count_kv", .u32(3)),
        ("llama.attention.layer_norm_rms_epsilon", .f32(.nan)),
        ("llama.rope.freq_base", .f32(-1)),
        ("llama.rope.dimension_count", .u32(1000)),
        // A head width of 1 once made the rope range 2...1, a trap (found by the gguf fuzz target).
        ("llama.attention.key_length", .u32(1)),
    ])
    func badSizes(key: String, value: GGUFBuilder.Value) {
        var b = GGUFBuilder.tinyLlama()
        b.set(key, value)
        #expect(error(b).contains(key) || error(b).contains("heads must be a multiple"), "\(key): \(error(b))")
    }

    @Test("a vocabulary of another size than the embedding rows is refused")
    func tokenCountMismatch() {
        let e = error(.tinyLlama(extraTokens: 3))
        #expect(e.contains("tokenizer.ggml.tokens has 7 tokens but the model's vocabulary has 4 rows"), "\(e)")
    }

    @Test("a tensor of the wrong shape is named")
    func wrongShape() {
        var b = GGUFBuilder.tinyLlama()
        b.set("llama.feed_forward_length", .u32(32))
        #expect(error(b).contains("tensor blk.0.ffn_gate.weight has shape [32, 64], expected [32, 32]"), "\(error(b))")
    }

    @Test("a context the machine cannot hold is refused with what it would need")
    func contextTooLarge() throws {
        let file = try GGUFFile(path: TestModels.smolPath)
        let e = #expect(throws: ModelError.self) {
            try MemoryBudget.check([file], contextSize: 100_000_000, sequences: 1)
        }
        let text = "\(e!)"
        #expect(text.contains("needs 4.2 TiB") && text.contains("lower -c/--ctx-size"), "\(text)")
        // -c times -np: each slot has its own cache.
        let f = #expect(throws: ModelError.self) {
            try MemoryBudget.check([file], contextSize: 1 << 20, sequences: 64, available: 24 << 30)
        }
        #expect("\(f!)".contains("64 sequences") && "\(f!)".contains("or -np"))
        try MemoryBudget.check([file], contextSize: 4096, sequences: 4, available: 24 << 30)
        #expect(throws: ModelError.self) { try MemoryBudget.check([file], contextSize: 1 << 31, sequences: 1) }
    }
}
