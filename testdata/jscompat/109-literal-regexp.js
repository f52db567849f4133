// Regular expressions that match literal text are accepted in replace, replaceAll and split.
Log("a-b-c".replace(/-/, "+"));
Log("a-b-c".replace(/-/g, "+"));
Log("1.2.3".replace(/\./g, "/"));
Log("C:\\dir\\file".replace(/\\/g, "/"));
Log("x(y)".replaceAll(/\(/g, "["));
Log("a, b, c".split(/, /).length);
Log("say \"hi\"".replace(/"/g, "'"));
