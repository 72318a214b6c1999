import Engine
import Foundation
import FuzzTargets
import Testing
import TestSupport

/// The regression corpus (Tests/Fuzz/corpus/TARGET/*: seeds and every input a fuzzer once crashed
/// on) replayed through the fuzz targets in the normal build: each must return.
@Suite("Fuzz corpus", .serialized)
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus").path

    @Test("every target has a corpus and replays it", arguments: FuzzTargets.names)
    func replay(target: String) throws {
        let dir = Self.corpus + "/" + target
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(!files.isEmpty, "no corpus for \(target)")
        let run = try #require(FuzzTargets.all[target])
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
            data.withUnsafeBytes { run($0) }
        }
    }

    @Test("the gguf seed is a model that runs, so mutations reach the forward pass")
    func ggufSeedRuns() throws {
        let model = try Model(path: Self.corpus + "/gguf/micro-llama")
        let logits = try model.forward(model.tokenizer.encode("ab a"), cache: model.makeCache(capacity: 8))
        #expect(logits.count == 8 && logits.allSatisfy(\.isFinite))
    }

    @Test("the crafted hostile GGUF files run through the gguf target")
    func craftedFiles() {
        var files: [GGUFBuilder] = [.tinyLlama(), .tinyLlama(extraTokens: 2)]
        var wrap = GGUFBuilder()
        wrap.tensors = [.init("w", dims: [(1 << 32) + 1, (1 << 32) - 1], offset: 0)]
        wrap.data = [UInt8](repeating: 0, count: 32)
        files.append(wrap)
        var array = GGUFBuilder()
        array.keys = [("k", .rawArray(itemType: 8, count: 1 << 40, bytes: []))]
        files.append(array)
        for b in files { b.bytes().withUnsafeBytes { FuzzTargets.all["gguf"]!($0) } }
    }
}
