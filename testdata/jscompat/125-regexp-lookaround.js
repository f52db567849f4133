// Lookahead and lookbehind, positive and negative.
Log("100px 200em 300px".match(/\d+(?=px)/g).join(","));
Log("100px 200em 300px".match(/\d+(?!px|\d)/g).join(","));
Log("$10 EUR20 $30".match(/(?<=\$)\d+/g).join(","));
Log("$10 EUR20 $30".match(/(?<!\$|\d)\d+/g).join(","));
Log("password1".replace(/(?=.*\d)^.*$/, "has digit"));
Log("1234567".replace(/\B(?=(\d{3})+(?!\d))/g, ","));
Log(/^(?!.*\.exe$).*$/i.test("ok.txt"), /^(?!.*\.exe$).*$/i.test("bad.EXE"));
