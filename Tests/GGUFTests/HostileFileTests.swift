import Foundation
import GGUF
import Testing
import TestSupport

/// Files crafted to break the reader's size arithmetic: each must be a clear error, found before
/// anything is allocated for it.
@Suite("GGUF reader: hostile files")
struct HostileFileTests {
    func parse(_ b: GGUFBuilder) throws -> GGUFFile {
        let bytes = b.bytes()
        return try bytes.withUnsafeBytes { try GGUFFile(bytes: $0, name: "crafted.gguf") }
    }

    func error(_ b: GGUFBuilder) -> String {
        do { _ = try parse(b); return "no error" } catch { return "\(error)" }
    }

    @Test("the built tiny model parses, from memory as from a path")
    func tinyParses() throws {
        let f = try parse(.tinyLlama())
        #expect(f.tensors.count == 11)
        #expect(try f.stringArray("tokenizer.ggml.tokens").count == 4)
        let path = temporaryFile(GGUFBuilder.tinyLlama().bytes())
        let g = try GGUFFile(path: path)
        #expect(g.metadata == f.metadata && g.tensorNames == f.tensorNames)
    }

    @Test("an array's count is checked at its item size before anything is reserved")
    func hugeArrayCount() {
        // 2^40 strings claimed in a file of a few hundred bytes: the count passed a one-byte-per-item
        // check only if the file were a terabyte; at 8 bytes per string it fails at once.
        var b = GGUFBuilder()
        b.keys = [("k", .rawArray(itemType: 8, count: 1 << 40, bytes: []))]
        #expect(error(b).contains("array k of 1099511627776 items"))
        var c = GGUFBuilder()
        c.keys = [("k", .rawArray(itemType: 8, count: 100, bytes: [UInt8](repeating: 0, count: 200)))]
        #expect(error(c).contains("truncated"), "\(error(c))")
        var d = GGUFBuilder()
        d.keys = [("k", .rawArray(itemType: 77, count: 1, bytes: [0]))]
        #expect(error(d).contains("unknown value type 77"))
    }

    @Test("a tensor whose element count wraps past 2^64 is refused")
    func wrappingElementCount() {
        // (2^32+1) x (2^32-1) = 2^64 - 1 elements: with wrapping arithmetic the byte count came out small.
        var b = GGUFBuilder()
        b.tensors = [.init("w", dims: [(1 << 32) + 1, (1 << 32) - 1], offset: 0)]
        b.data = [UInt8](repeating: 0, count: 32)
        #expect(error(b).contains("more elements than a file can hold"), "\(error(b))")
        var c = GGUFBuilder()
        c.tensors = [.init("w", dims: [1 << 39, 1 << 39, 1 << 39], offset: 0)]
        #expect(error(c).contains("more elements than a file can hold"), "\(error(c))")
    }

    @Test("an offset past the end, or past Int.max, is a truncation, not a trap")
    func hugeOffset() {
        for offset: UInt64 in [UInt64.max - 31, 1 << 63, 1 << 40, 64] {
            var b = GGUFBuilder()
            b.tensors = [.init("w", dims: [8], offset: offset)]
            b.data = [UInt8](repeating: 0, count: 32)
            #expect(error(b).contains("data of tensor w"), "\(offset): \(error(b))")
        }
    }

    @Test("duplicate tensor names and keys, overlapping and unaligned data are refused")
    func layoutErrors() {
        var dup = GGUFBuilder()
        dup.tensors = [.init("w", dims: [8], offset: 0), .init("w", dims: [8], offset: 32)]
        dup.data = [UInt8](repeating: 0, count: 64)
        #expect(error(dup).contains("tensor w appears twice"))

        var overlap = GGUFBuilder()
        overlap.tensors = [.init("a", dims: [16], offset: 0), .init("b", dims: [8], offset: 32)]
        overlap.data = [UInt8](repeating: 0, count: 96)
        #expect(error(overlap).contains("the data of tensors a and b overlap"))

        var unaligned = GGUFBuilder()
        unaligned.tensors = [.init("a", dims: [8], offset: 4)]
        unaligned.data = [UInt8](repeating: 0, count: 64)
        #expect(error(unaligned).contains("not aligned to 32 bytes"))

        var key = GGUFBuilder()
        key.keys = [("k", .u32(1)), ("k", .u32(2))]
        #expect(error(key).contains("metadata key k appears twice"))

        var align = GGUFBuilder()
        align.keys = [("general.alignment", .u32(48))]
        #expect(error(align).contains("not a power of two"))
    }

    @Test("counts larger than the file could hold are refused before the loop")
    func implausibleCounts() {
        var b = GGUFBuilder()
        b.keyCount = 1 << 19
        #expect(error(b).contains("524288 keys and 0 tensor infos"))
        var c = GGUFBuilder()
        c.tensorCount = 1 << 19
        #expect(error(c).contains("0 keys and 524288 tensor infos"))
        var d = GGUFBuilder()
        d.tensorCount = 1 << 21
        #expect(error(d).contains("implausible counts"))
    }
}
