import Foundation
import FuzzTargets

#if FUZZING
/// libFuzzer's entry for programs with their own main (linked from libclang_rt.fuzzer_no_main).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

nonisolated(unsafe) var selected: ((UnsafeRawBufferPointer) -> Void)!
#endif

/// `relay-fuzz TARGET [FILE|DIR ...]`: replays inputs through a fuzz target (plain build), or, built
/// with -DFUZZING and libFuzzer (scripts/fuzz.sh), fuzzes it with libFuzzer's flags after TARGET.
@main
struct RelayFuzz {
    static func main() {
        let args = CommandLine.arguments
        guard args.count >= 2, let target = FuzzTargets.all[args[1]] else {
            FileHandle.standardError.write(Data("usage: relay-fuzz TARGET [inputs or libFuzzer flags]; targets: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
            exit(2)
        }
        #if FUZZING
        // Statics (a compiled regex, the SmolLM2 tokenizer) are built once and kept; build them
        // before libFuzzer starts counting, so that its leak check sees only what an input leaks.
        for warm in ["", "<call>8</call> a </call><call>"] { Array(warm.utf8).withUnsafeBytes { target($0) } }
        selected = target
        // libFuzzer reads its own flags; drop TARGET from what it sees.
        var argv = CommandLine.unsafeArgv
        argv[1] = argv[0]
        var rest = argv + 1
        var argc = CommandLine.argc - 1
        exit(LLVMFuzzerRunDriver(&argc, &rest) { data, size in
            selected(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        var count = 0
        for path in args.dropFirst(2) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                data.withUnsafeBytes { target($0) }
                count += 1
            }
        }
        print("\(args[1]): replayed \(count) inputs")
        #endif
    }
}
