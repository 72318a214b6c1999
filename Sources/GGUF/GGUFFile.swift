import Foundation

/// A GGUF file, memory-mapped. Metadata and the tensor directory are parsed eagerly with bounds
/// checks; tensor data stays in the mapping and is handed out as zero-copy pointers.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: GGUFTensor]
    /// Tensor names in file order.
    public let tensorNames: [String]

    let base: UnsafeRawPointer
    let size: Int

    public init(path: String) throws {
        self.path = path
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
        self.base = UnsafeRawPointer(map)
        self.size = size
        var r = Reader(base: base, size: size, path: path)
        do {
            // File order: magic, version, counts, key/values, tensor infos, aligned data.
            let magic = try r.u32()
            guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path: path, found: magic) }
            version = try r.u32()
            guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
            let tensorCount = try r.u64()
            let kvCount = try r.u64()
            guard tensorCount < 1 << 20, kvCount < 1 << 20 else {
                throw GGUFError.corrupt(path: path, what: "implausible counts (\(tensorCount) tensors, \(kvCount) keys)")
            }
            var meta: [String: GGUFValue] = [:]
            for _ in 0..<kvCount {
                let key = try r.string()
                let type = try r.u32()
                meta[key] = try r.value(type: type, key: key)
            }
            var alignment = 32
            if let a = meta[GGUFKey.alignment]?.int {
                guard a > 0, a & (a - 1) == 0 else { throw GGUFError.corrupt(path: path, what: "alignment \(a) is not a power of two") }
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
            let dataStart = (r.offset + alignment - 1) / alignment * alignment
            var tensors: [String: GGUFTensor] = [:]
            var names: [String] = []
            for info in infos {
                guard let type = GGMLType(rawValue: info.type) else {
                    throw GGUFError.unsupportedTensorType(path: path, tensor: info.name, type: info.type)
                }
                let count = info.dims.reduce(1, *)
                guard info.dims[0] % type.blockSize == 0 else {
                    throw GGUFError.corrupt(path: path, what: "tensor \(info.name) row of \(info.dims[0]) is not a multiple of the \(type) block")
                }
                let bytes = count / type.blockSize * type.blockBytes
                let start = dataStart + Int(info.offset)
                guard info.offset < UInt64(size), start + bytes <= size else {
                    throw GGUFError.truncated(path: path, what: "data of tensor \(info.name)", offset: start + bytes)
                }
                tensors[info.name] = GGUFTensor(name: info.name, type: type, dims: info.dims, data: base + start, byteCount: bytes)
                names.append(info.name)
            }
            self.metadata = meta
            self.tensors = tensors
            self.tensorNames = names
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

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
    public let data: UnsafeRawPointer
    public let byteCount: Int

    public var rowLength: Int { dims[0] }
    public var rowCount: Int { dims.dropFirst().reduce(1, *) }
    public var rowBytes: Int { rowLength / type.blockSize * type.blockBytes }
}

/// Bounds-checked little-endian reader over the mapped header.
struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

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
        guard n <= UInt64(size) else { throw GGUFError.truncated(path: path, what: "string of \(n) bytes", offset: offset) }
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
            guard n <= UInt64(size - offset) else { throw GGUFError.truncated(path: path, what: "array \(key)", offset: offset) }
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
}
