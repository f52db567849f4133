var name = "world", n = 3;
Log(`hello ${name}`);
Log(`${n} + ${n} = ${n + n}`);
Log(`multi
line`);
Log(`nested ${`inner ${n}`}`);
Log(`${null} ${undefined} ${[1, 2]} ${0.1 + 0.2}`);
Log(`escapes: \` \${x} \n`.length);
