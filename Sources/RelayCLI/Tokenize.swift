import ArgumentParser
import Engine
import Foundation

extension RelayCommand {
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read text on stdin and print its token ids as a JSON array.")

        @OptionGroup var model: ModelOptions

        @Flag(name: .customLong("no-bos"), help: "Do not add a BOS token even if the model's metadata asks for one.")
        var noBOS = false

        @Flag(name: .customLong("no-parse-special"), help: "Tokenize special-token text as plain text.")
        var noParseSpecial = false

        func run() throws {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            let text = String(decoding: data, as: UTF8.self)
            let tok = try model.load().tokenizer
            let ids = tok.encode(text, addBOS: !noBOS && tok.addBOS, parseSpecial: !noParseSpecial)
            writeOut("[" + ids.map(String.init).joined(separator: ", ") + "]\n")
        }
    }
}
