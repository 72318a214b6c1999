import Engine
import Foundation

/// Calibrated cue phrases, as `relay calibrate` writes them.
public struct CueSet: Codable, Sendable {
    public struct Cue: Codable, Sendable {
        public var text: String
        public var delta: Double
        public var count: Int
        public init(text: String, delta: Double, count: Int) {
            self.text = text
            self.delta = delta
            self.count = count
        }
    }
    public var model: String?
    public var cues: [Cue]
    /// The models it was calibrated with (nil in files written before they were recorded): what
    /// finds a shipped file for the models at hand (`CueSet.shipped(large:small:)`).
    public var large: ModelIdentity?
    public var small: ModelIdentity?

    public init(model: String?, cues: [Cue], large: ModelIdentity? = nil, small: ModelIdentity? = nil) {
        self.model = model
        self.cues = cues
        self.large = large
        self.small = small
    }

    public static func load(_ path: String) throws -> CueSet {
        guard let data = FileManager.default.contents(atPath: path) else { throw CueError.unreadable(path) }
        return try decode(data, source: path)
    }

    /// Every cue is matched against the text after every token, so their number and length are bounded.
    public static let maxCues = 256, maxCueLength = 256

    public static func decode(_ data: Data, source: String) throws -> CueSet {
        let set: CueSet
        do { set = try JSONDecoder().decode(CueSet.self, from: data) } catch {
            throw CueError.malformed(source, detail: "\(error)")
        }
        guard !set.cues.isEmpty, set.cues.allSatisfy({ !$0.text.isEmpty }) else { throw CueError.malformed(source, detail: "no cues, or an empty cue") }
        guard set.cues.count <= maxCues, set.cues.allSatisfy({ $0.text.utf8.count <= maxCueLength }) else {
            throw CueError.malformed(source, detail: "more than \(maxCues) cues, or a cue longer than \(maxCueLength) bytes")
        }
        return set
    }
}

public enum CueError: Error, CustomStringConvertible {
    case unreadable(String)
    case malformed(String, detail: String)
    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read cue file \(p)"
        case .malformed(let p, let d): return "cue file \(p) is malformed: \(d.prefix(200))"
        }
    }
}
