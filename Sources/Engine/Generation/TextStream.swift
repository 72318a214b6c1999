/// Turns generated tokens into text for a reader: complete UTF-8 only, stop strings cut off,
/// and text that might be the start of a stop string held back until it is known not to be.
public struct TextStream {
    public let stops: [String]
    var decoder: StreamDecoder
    var pending = ""
    public private(set) var text = ""
    public private(set) var stopped = false

    public init(tokenizer: Tokenizer, stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        decoder = StreamDecoder(tokenizer: tokenizer)
    }

    /// Adds a token; returns the text that is now safe to show.
    public mutating func push(_ token: Int32) -> String {
        guard !stopped else { return "" }
        pending += decoder.push(token)
        return release()
    }

    /// Ends the stream, returning whatever is still held.
    public mutating func finish() -> String {
        guard !stopped else { return "" }
        pending += decoder.flush()
        let out = pending
        pending = ""
        text += out
        return out
    }

    mutating func release() -> String {
        // A stop string anywhere in the pending text ends the stream before it.
        if let hit = stops.compactMap({ pending.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            let out = String(pending[..<hit.lowerBound])
            pending = ""
            stopped = true
            text += out
            return out
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        var hold = 0
        for stop in stops {
            for n in stride(from: min(stop.count - 1, pending.count), to: hold, by: -1)
            where pending.hasSuffix(stop.prefix(n)) {
                hold = n
                break
            }
        }
        let out = String(pending.dropLast(hold))
        pending = String(pending.suffix(hold))
        text += out
        return out
    }
}
