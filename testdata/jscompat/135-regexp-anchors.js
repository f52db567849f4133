// Anchors and word boundaries.
Log(/^abc/.test("abcdef"), /^abc/.test("xabc"), /def$/.test("abcdef"), /def$/.test("def\n"));
Log(/\bcat\b/.test("a cat sat"), /\bcat\b/.test("concatenate"), /\Bcat\B/.test("concatenate"));
Log("cat concat cat".replace(/\bcat\b/g, "dog"));
Log(JSON.stringify("one two".split(/\b/)));
Log(/^$/.test("\n"), /^$/m.test("a\n\nb"));
