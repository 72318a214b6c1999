import Foundation

/// A GGUF file, memory-mapped (or, for fuzzing and tests, held in memory). Metadata and the tensor
/// directory are parsed eagerly; every size read from the file is checked against the bytes left
/// before anything is allocated, with overflow-checked arithmetic. Tensor data stays in the mapping
/// and is handed out as zero-copy pointers.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: GGUFTensor]
    /// Tensor names in file order.
    public let tensorNames: [String]

    let storage: Storage
    var base: UnsafeRawPointer { storage.base }
    /// Bytes of the whole file.
    public var size: Int { storage.size }

    /// The bytes behind a file: a private read-only mapping, or a heap copy.
    final class Storage {
        let base: UnsafeRawPointer
        let size: Int
        let mapped: Bool
        init(base: UnsafeRawPointer, size: Int, mapped: Bool) { (self.base, self.size, self.mapped) = (base, size, mapped) }
        deinit {
            if mapped { munmap(UnsafeMutableRawPointer(mutating: base), size) } else { base.deallocate() }
        }
    }

    public convenience init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size >= 24 else { throw GGUFError.truncated(path: path, what: "header", offset: 0) }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        try self.init(path: path, storage: Storage(base: UnsafeRawPointer(map), size: size, mapped: true))
    }

    /// Parses a GGUF image held in memory (a copy is kept, aligned as a mapping would be).
    public convenience init(bytes: UnsafeRawBufferPointer, name: String = "<memory>") throws {
        guard bytes.count >= 24 else { throw GGUFError.truncated(path: name, what: "header", offset: 0) }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        copy.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        try self.init(path: name, storage: Storage(base: UnsafeRawPointer(copy), size: bytes.count, mapped: false))
    }

    init(path: String, storage: Storage) throws {
        self.path = path
        self.storage = storage
        var r = Reader(base: storage.base, size: storage.size, path: path)
        // File order: magic, version, counts, key/values, tensor infos, aligned data.
        let magic = try r.u32()
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path: path, found: magic) }
        version = try r.u32()
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        let tensorCount = try r.u64()
        let kvCount = try r.u64()
        // A key takes at least 12 bytes (length, type, one-byte value) and a tensor info at least 28.
        guard tensorCount < 1 << 20, kvCount < 1 << 20 else {
            throw GGUFError.corrupt(path: path, what: "implausible counts (\(tensorCount) tensors, \(kvCount) keys)")
        }
        guard kvCount * 12 + tensorCount * 28 <= UInt64(r.remaining) else {
            throw GGUFError.truncated(path: path, what: "\(kvCount) keys and \(tensorCount) tensor infos", offset: r.offset)
        }
        var meta: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try r.string()
            let type = try r.u32()
            let value = try r.value(type: type, key: key)
            guard meta.updateValue(value, forKey: key) == nil else { throw GGUFError.corrupt(path: path, what: "metadata key \(key) appears twice") }
        }
        var alignment = 32
        if let v = meta[GGUFKey.alignment] {
            guard let a = v.int, a > 0, a <= 1 << 20, a & (a - 1) == 0 else {
                throw GGUFError.corrupt(path: path, what: "\(GGUFKey.alignment) \(v) is not a power of two up to 1 MiB")
            }
            alignment = a
        }
        struct Info { let name: String; let dims: [Int]; let type: UInt32; let offset: UInt64 }
        var infos: [Info] = []
        for _ in 0..<tensorCount {
            let name = try r.string()
            let nDims = try r.u32()
            guard nDims >= 1, nDims <= 4 else { throw GGUFError.corrupt(path: path, what: "tensor \(name) has \(nDims) dimensions") }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64()
                guard d > 0, d < 1 << 40 else { throw GGUFError.corrupt(path: path, what: "tensor \(name) has dimension \(d)") }
                dims.append(Int(d))
            }
            infos.append(Info(name: name, dims: dims, type: try r.u32(), offset: try r.u64()))
        }
        let dataStart = r.offset.roundedUp(to: alignment)
        let dataSize = max(storage.size - dataStart, 0)
        var tensors: [String: GGUFTensor] = [:]
        var names: [String] = []
        var extents: [(start: Int, end: Int, name: String)] = []
        for info in infos {
            guard let type = GGMLType(rawValue: info.type) else {
                throw GGUFError.unsupportedTensorType(path: path, tensor: info.name, type: info.type)
            }
            guard info.dims[0] % type.blockSize == 0 else {
                throw GGUFError.corrupt(path: path, what: "tensor \(info.name) row of \(info.dims[0]) is not a multiple of the \(type) block")
            }
            // Element count and bytes with overflow checks: dimensions below 2^40 can still multiply past 2^63.
            var count = 1
            for d in info.dims {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= 1 << 50 else {
                    throw GGUFError.corrupt(path: path, what: "tensor \(info.name) of shape \(info.dims) has more elements than a file can hold")
                }
                count = product
            }
            let (bytes, overflow) = (count / type.blockSize).multipliedReportingOverflow(by: type.blockBytes)
            guard info.offset % UInt64(alignment) == 0 else {
                throw GGUFError.corrupt(path: path, what: "tensor \(info.name) data offset \(info.offset) is not aligned to \(alignment) bytes")
            }
            guard !overflow, info.offset <= UInt64(dataSize), bytes <= dataSize - Int(info.offset) else {
                throw GGUFError.truncated(path: path, what: "data of tensor \(info.name) (\(info.dims), \(type), at offset \(info.offset))", offset: storage.size)
            }
            let start = Int(info.offset)
            guard tensors[info.name] == nil else { throw GGUFError.corrupt(path: path, what: "tensor \(info.name) appears twice") }
            tensors[info.name] = GGUFTensor(name: info.name, type: type, dims: info.dims, elementCount: count,
                                            data: storage.base + dataStart + start, byteCount: bytes)
            names.append(info.name)
            extents.append((start, start + bytes, info.name))
        }
        extents.sort { $0.start < $1.start }
        for (a, b) in zip(extents, extents.dropFirst()) where b.start < a.end {
            throw GGUFError.corrupt(path: path, what: "the data of tensors \(a.name) and \(b.name) overlap")
        }
        self.metadata = meta
        self.tensors = tensors
        self.tensorNames = names
    }


    // MARK: Typed metadata access

    public func string(_ key: String) throws -> String {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let s = v.string else { throw GGUFError.wrongType(path: path, key: key, expected: "string") }
        return s
    }

    public func int(_ key: String) throws -> Int {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let i = v.int else { throw GGUFError.wrongType(path: path, key: key, expected: "integer") }
        return i
    }

    public func float(_ key: String) throws -> Float {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let f = v.float else { throw GGUFError.wrongType(path: path, key: key, expected: "number") }
        return f
    }

    public func stringArray(_ key: String) throws -> [String] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard case .array(let items) = v else { throw GGUFError.wrongType(path: path, key: key, expected: "array of strings") }
        return try items.map {
            guard let s = $0.string else { throw GGUFError.wrongType(path: path, key: key, expected: "array of strings") }
            return s
        }
    }

    public func intArray(_ key: String) throws -> [Int] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard case .array(let items) = v else { throw GGUFError.wrongType(path: path, key: key, expected: "array of integers") }
        return try items.map {
            guard let i = $0.int else { throw GGUFError.wrongType(path: path, key: key, expected: "array of integers") }
            return i
        }
    }

    public func tensor(_ name: String) throws -> GGUFTensor {
        guard let t = tensors[name] else { throw GGUFError.missingTensor(path: path, name: name) }
        return t
    }
}

public struct GGUFTensor: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    /// Dimensions as GGUF stores them: dims[0] is the contiguous (row) length.
    public let dims: [Int]
    /// Elements in all; the reader checked that this and `byteCount` fit in the file.
    public let elementCount: Int
    public let data: UnsafeRawPointer
    public let byteCount: Int

    public var rowLength: Int { dims[0] }
    public var rowCount: Int { elementCount / dims[0] }
    public var rowBytes: Int { rowLength / type.blockSize * type.blockBytes }
}

/// Bounds-checked little-endian reader over the mapped header.
struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    var remaining: Int { size - offset }

    mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawPointer {
        guard n >= 0, offset <= size - n else { throw GGUFError.truncated(path: path, what: what, offset: offset) }
        defer { offset += n }
        return base + offset
    }
    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        T(littleEndian: try bytes(MemoryLayout<T>.size, "header").loadUnaligned(as: T.self))
    }
    mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws -> UInt64 { try load(UInt64.self) }
    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(remaining) else { throw GGUFError.truncated(path: path, what: "string of \(n) bytes", offset: offset) }
        let p = try bytes(Int(n), "string")
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .int(Int(try load(UInt8.self)))
        case 1: return .int(Int(try load(Int8.self)))
        case 2: return .int(Int(try load(UInt16.self)))
        case 3: return .int(Int(try load(Int16.self)))
        case 4: return .int(Int(try load(UInt32.self)))
        case 5: return .int(Int(try load(Int32.self)))
        case 6: return .float(Double(Float(bitPattern: try u32())))
        case 7: return .bool(try load(UInt8.self) != 0)
        case 8: return .string(try string())
        case 9:
            guard depth == 0 else { throw GGUFError.corrupt(path: path, what: "nested array in key \(key)") }
            let itemType = try u32()
            let n = try u64()
            // Check the count against the bytes left at the item type's smallest size before reserving.
            guard let itemSize = Self.minimumSize(itemType) else {
                throw GGUFError.corrupt(path: path, what: "key \(key) is an array of unknown value type \(itemType)")
            }
            guard n <= UInt64(remaining / itemSize) else {
                throw GGUFError.truncated(path: path, what: "array \(key) of \(n) items", offset: offset)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<n { items.append(try value(type: itemType, key: key, depth: 1)) }
            return .array(items)
        case 10: return .int(Int(truncatingIfNeeded: try u64()))
        case 11: return .int(Int(try load(Int64.self)))
        case 12: return .float(Double(bitPattern: try u64()))
        default: throw GGUFError.corrupt(path: path, what: "key \(key) has unknown value type \(type)")
        }
    }

    /// Bytes a value of this type takes at least (a string: its 8-byte length); nil for unknown
    /// types and nested arrays.
    static func minimumSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        default: return nil
        }
    }
}

extension Int {
    func roundedUp(to alignment: Int) -> Int { (self + alignment - 1) / alignment * alignment }
}
